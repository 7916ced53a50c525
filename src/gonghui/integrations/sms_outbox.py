"""``GET /_sim/sms/outbox``: what the development SMS sink sent to a phone, so that the
development H5 (and a person trying the API) can read the one-time code."""

from __future__ import annotations

from fastapi import APIRouter

from gonghui.integrations.sms import dev_outbox

router = APIRouter(prefix="/_sim/sms", tags=["simulators"], include_in_schema=False)


@router.get("/outbox")
def outbox(phone: str) -> list[dict[str, str]]:
    return dev_outbox(phone)

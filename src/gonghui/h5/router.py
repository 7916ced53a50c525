"""The members' H5 app: server-rendered pages over the same services as the API.

One module per use case; this one assembles them under ``/h5``, in the order their
routes were always matched.
"""

from __future__ import annotations

from fastapi import APIRouter

from gonghui.h5 import (
    challenge,
    competition_forms,
    hub,
    inbox,
    join,
    lottery,
    mall,
    news,
    oauth,
    quiz,
    results,
    services,
    sign_in,
    verify,
    vote,
    vouchers,
    wallet,
    wechat,
)

router = APIRouter(prefix="/h5", include_in_schema=False)
for part in (
    sign_in,
    verify,
    join,
    hub,
    lottery,
    vouchers,
    vote,
    competition_forms,
    wallet,
    quiz,
    wechat,
    mall,
    challenge,
    oauth,
    services,
    inbox,
    news,
    results,
):
    router.include_router(part.router)

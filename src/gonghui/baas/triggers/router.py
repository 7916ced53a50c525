"""HTTP: triggers and their delivery log (developers), and incoming webhooks (anyone who
holds the trigger's secret)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status

from gonghui.baas.triggers import service
from gonghui.baas.triggers.models import TriggerEvent
from gonghui.baas.triggers.schemas import (
    Accepted,
    AttemptRead,
    DeliveryDetail,
    DeliveryRead,
    TriggerCreate,
    TriggerCreated,
    TriggerRead,
)
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.settings import get_settings
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1/baas", tags=["triggers"])


@router.post("/apps/{app_id}/triggers", status_code=status.HTTP_201_CREATED)
def create_trigger(
    app_id: Id, body: TriggerCreate, staff: CurrentStaff, session: SessionDep
) -> TriggerCreated:
    spec = service.TriggerSpec(**body.model_dump())
    trigger, secret = service.create_trigger(session, actor=staff, app_id=app_id, spec=spec)
    incoming = None
    if trigger.event == TriggerEvent.INCOMING:
        base = get_settings().public_base_url.rstrip("/")
        incoming = f"{base}/api/v1/baas/incoming/{trigger.id}"
    return TriggerCreated(
        **TriggerRead.model_validate(trigger).model_dump(), secret=secret, incoming_url=incoming
    )


@router.get("/apps/{app_id}/triggers")
def list_triggers(app_id: Id, staff: CurrentStaff, session: SessionDep) -> list[TriggerRead]:
    return [
        TriggerRead.model_validate(t)
        for t in service.list_triggers(session, actor=staff, app_id=app_id)
    ]


@router.post("/apps/{app_id}/triggers/{trigger_id}/enable")
def enable_trigger(
    app_id: Id, trigger_id: Id, staff: CurrentStaff, session: SessionDep
) -> TriggerRead:
    trigger = service.set_enabled(
        session, actor=staff, app_id=app_id, trigger_id=trigger_id, enabled=True
    )
    return TriggerRead.model_validate(trigger)


@router.post("/apps/{app_id}/triggers/{trigger_id}/disable")
def disable_trigger(
    app_id: Id, trigger_id: Id, staff: CurrentStaff, session: SessionDep
) -> TriggerRead:
    trigger = service.set_enabled(
        session, actor=staff, app_id=app_id, trigger_id=trigger_id, enabled=False
    )
    return TriggerRead.model_validate(trigger)


@router.get("/apps/{app_id}/deliveries")
def list_deliveries(
    app_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    status: str | None = None,
    trigger_id: Id | None = None,
    before_id: Id | None = None,
    limit: Count = 50,
) -> list[DeliveryRead]:
    rows = service.list_deliveries(
        session,
        actor=staff,
        app_id=app_id,
        status=status,
        trigger_id=trigger_id,
        before_id=before_id,
        limit=limit,
    )
    return [DeliveryRead.model_validate(d) for d in rows]


@router.get("/apps/{app_id}/deliveries/{delivery_id}")
def get_delivery(
    app_id: Id, delivery_id: Id, staff: CurrentStaff, session: SessionDep
) -> DeliveryDetail:
    delivery, attempts = service.get_delivery(
        session, actor=staff, app_id=app_id, delivery_id=delivery_id
    )
    return DeliveryDetail(
        **DeliveryRead.model_validate(delivery).model_dump(),
        attempt_log=[AttemptRead.model_validate(a) for a in attempts],
    )


@router.post("/apps/{app_id}/deliveries/{delivery_id}/redeliver")
def redeliver(
    app_id: Id, delivery_id: Id, staff: CurrentStaff, session: SessionDep
) -> DeliveryRead:
    delivery = service.redeliver(session, actor=staff, app_id=app_id, delivery_id=delivery_id)
    return DeliveryRead.model_validate(delivery)


async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/incoming/{trigger_id}", status_code=status.HTTP_202_ACCEPTED)
def incoming(
    trigger_id: Id,
    body: Annotated[bytes, Depends(raw_body)],
    session: SessionDep,
    timestamp: Annotated[str | None, Header(alias="X-Gonghui-Timestamp")] = None,
    signature: Annotated[str | None, Header(alias="X-Gonghui-Signature")] = None,
) -> Accepted:
    """Receive a signed event; 202 means it is stored and will be delivered."""
    delivery = service.receive_incoming(
        session, trigger_id=trigger_id, body=body, timestamp=timestamp, signature=signature
    )
    return Accepted(event_id=delivery.event_id)

"""HTTP: triggers and their delivery log (developers), and incoming webhooks (anyone who
holds the trigger's secret)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from starlette.concurrency import run_in_threadpool

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
from gonghui.bodylimit import max_body
from gonghui.db import unit_of_work
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
        base = get_settings().resolved_public_base_url
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


# An incoming event is a small JSON document; anyone may send one, so little is read.
INCOMING_MAX_BYTES = 256 * 1024


@router.post("/incoming/{trigger_id}", status_code=status.HTTP_202_ACCEPTED)
@max_body(INCOMING_MAX_BYTES)
async def incoming(
    trigger_id: Id,
    request: Request,
    timestamp: Annotated[str | None, Header(alias="X-Gonghui-Timestamp")] = None,
    signature: Annotated[str | None, Header(alias="X-Gonghui-Signature")] = None,
) -> Accepted:
    """Receive a signed event; 202 means it is stored and will be delivered."""

    def find() -> None:
        with unit_of_work(read_only=True) as session:
            service.incoming_trigger(session, trigger_id=trigger_id)

    def receive(body: bytes) -> Accepted:
        with unit_of_work() as session:
            delivery = service.receive_incoming(
                session, trigger_id=trigger_id, body=body, timestamp=timestamp, signature=signature
            )
            return Accepted(event_id=delivery.event_id)

    # The caller is anonymous: an unknown trigger answers 404 before the body is read.
    await run_in_threadpool(find)
    return await run_in_threadpool(receive, await request.body())

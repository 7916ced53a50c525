"""Triggers: what fires them (record changes, activity events, schedules, incoming
webhooks) and where their events go (a function, or an outgoing webhook).

Firing writes a delivery row and the task that sends it in the caller's transaction; a
worker runs the task after commit (:mod:`gonghui.baas.triggers.delivery`).
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from croniter import croniter
from sqlalchemy import bindparam, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, object_session

from gonghui import hooks, invalidation, outbound
from gonghui.audit import service as audit
from gonghui.baas.apps import get_app
from gonghui.baas.functions.secrets import seal_secrets
from gonghui.baas.permissions import Caller
from gonghui.baas.records.rows import ref_resolver
from gonghui.baas.records.where import Compiler
from gonghui.baas.tables import info as infos
from gonghui.baas.tables.info import TableInfo
from gonghui.baas.triggers import delivery as delivery_engine
from gonghui.baas.triggers import signing
from gonghui.baas.triggers.errors import TriggersError
from gonghui.baas.triggers.models import (
    RECORD_EVENTS,
    Delivery,
    DeliveryAttempt,
    TargetKind,
    Trigger,
    TriggerEvent,
)
from gonghui.clock import now
from gonghui.errors import InvalidInput, NotFound, Unauthenticated, field_error
from gonghui.observability import request_id_var, request_scope
from gonghui.orgs.models import ORG_TREE_TOPIC, Org
from gonghui.outbound import OutboundError
from gonghui.tenancy import Actor

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    event: TriggerEvent
    target_kind: TargetKind
    table_name: str | None = None
    filter: dict[str, Any] | None = None
    cron: str | None = None
    function_name: str | None = None
    webhook_url: str | None = None
    max_attempts: int = 8


def _bad(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(code, message, [field_error(field, code, message)])


def next_tick(cron: str, after: datetime) -> datetime:
    """The first tick of ``cron`` (5 fields, or 6 with seconds last) after ``after``."""
    tick: datetime = croniter(cron, after).get_next(datetime)
    return tick


def _check(session: Session, app_id: int, spec: TriggerSpec) -> None:
    if not _NAME.match(spec.name):
        raise _bad("name", TriggersError.BAD_TRIGGER, "lower-case letters, digits, - and _")
    if spec.event in RECORD_EVENTS:
        if not spec.table_name:
            raise _bad("table_name", TriggersError.BAD_TRIGGER, "record triggers name a table")
        table = infos.load(session, app_id=app_id, name=spec.table_name)
        if spec.filter is not None:
            # Compiling refuses a bad filter now rather than at the first change.
            _compiler(session, app_id).compile(table, spec.filter)
    if spec.event is TriggerEvent.SCHEDULE and (not spec.cron or not croniter.is_valid(spec.cron)):
        raise _bad("cron", TriggersError.BAD_CRON, "a cron expression, e.g. '0 9 * * *'")
    if spec.target_kind is TargetKind.FUNCTION and not spec.function_name:
        raise _bad("function_name", TriggersError.BAD_TRIGGER, "name the function to run")
    if spec.target_kind is TargetKind.WEBHOOK:
        # Syntax and literal addresses now; a name's addresses are checked at each delivery,
        # since what it resolves to may change.
        try:
            outbound.check_url(spec.webhook_url or "")
        except OutboundError as exc:
            raise _bad("webhook_url", TriggersError.BAD_URL, exc.message) from exc
    if not 1 <= spec.max_attempts <= 20:
        raise _bad("max_attempts", TriggersError.BAD_TRIGGER, "between 1 and 20")


def _compiler(session: Session, app_id: int) -> Compiler:
    """Filters see the record as the app's server would: not through anyone's rights."""
    app_caller = Caller(app_id=app_id, org_id=0, org_path="/", server=True)
    return Compiler(
        dialect=session.get_bind().dialect.name, resolve_ref=ref_resolver(session, app_caller)
    )


def create_trigger(
    session: Session, *, actor: Actor, app_id: int, spec: TriggerSpec
) -> tuple[Trigger, str | None]:
    """The trigger, and the secret of an incoming or webhook trigger (shown once)."""
    app = get_app(session, actor=actor, app_id=app_id)
    _check(session, app.id, spec)
    secret = None
    if spec.target_kind is TargetKind.WEBHOOK or spec.event is TriggerEvent.INCOMING:
        secret = "whsec_" + secrets.token_urlsafe(24)
    trigger = Trigger(
        app_id=app.id,
        org_id=app.org_id,
        name=spec.name,
        event=spec.event,
        table_name=spec.table_name,
        filter=spec.filter,
        cron=spec.cron,
        next_run_at=next_tick(spec.cron, now()) if spec.cron else None,
        target_kind=spec.target_kind,
        function_name=spec.function_name,
        webhook_url=spec.webhook_url,
        max_attempts=spec.max_attempts,
    )
    session.add(trigger)
    session.flush()
    if secret is not None:
        trigger.secret_enc = seal_secrets(-trigger.id, {"secret": secret})
    audit.record(
        session,
        actor=actor,
        action="triggers.create",
        org_id=app.org_id,
        subject_type="trigger",
        subject_id=trigger.id,
        details={"app_id": app.id, "event": str(spec.event), "target": str(spec.target_kind)},
    )
    return trigger, secret


def list_triggers(session: Session, *, actor: Actor, app_id: int) -> list[Trigger]:
    get_app(session, actor=actor, app_id=app_id)
    return list(
        session.scalars(select(Trigger).where(Trigger.app_id == app_id).order_by(Trigger.id))
    )


def get_trigger(session: Session, *, actor: Actor, app_id: int, trigger_id: int) -> Trigger:
    get_app(session, actor=actor, app_id=app_id)
    trigger = session.get(Trigger, trigger_id)
    if trigger is None or trigger.app_id != app_id:
        raise NotFound(TriggersError.NOT_FOUND, f"trigger {trigger_id} not found")
    return trigger


def set_enabled(
    session: Session, *, actor: Actor, app_id: int, trigger_id: int, enabled: bool
) -> Trigger:
    trigger = get_trigger(session, actor=actor, app_id=app_id, trigger_id=trigger_id)
    trigger.enabled = enabled
    if enabled and trigger.cron:
        trigger.next_run_at = next_tick(trigger.cron, now())
    audit.record(
        session,
        actor=actor,
        action="triggers.enable" if enabled else "triggers.disable",
        org_id=trigger.org_id,
        subject_type="trigger",
        subject_id=trigger.id,
    )
    return trigger


# -- firing -------------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    trigger: Trigger,
    event: str,
    payload: dict[str, Any],
    event_id: str | None = None,
) -> Delivery:
    """Store one event for one trigger in the caller's transaction, and the task that
    delivers it after commit."""
    delivery = Delivery(
        event_id=event_id or uuid.uuid4().hex,
        trigger_id=trigger.id,
        app_id=trigger.app_id,
        event=event,
        payload=payload,
        next_attempt_at=now(),
        request_id=request_id_var.get(),
    )
    return delivery_engine.store(session, delivery, max_attempts=trigger.max_attempts)


# Every record write asks this, and almost always hears "none": one statement built once
# (its compiled form is cached by SQLAlchemy), over the table rather than the ORM entity.
_trigger_table = Trigger.__table__.c
_ENABLED_RECORD_TRIGGERS = (
    select(_trigger_table.id)
    .where(
        _trigger_table.app_id == bindparam("app_id"),
        _trigger_table.event == bindparam("event"),
        _trigger_table.table_name == bindparam("table_name"),
        _trigger_table.enabled.is_(True),
    )
    .order_by(_trigger_table.id)
)

# ... and so its answer is held per process: the enabled record triggers of (app, event,
# table), kept current by the change feed (topic ``baas.triggers``, key the app id). Any
# change of a trigger row through the ORM (created, enabled, disabled, edited) is
# recorded by the mapper hook below, so it shows at its commit in this process and within
# the feed's lag in every other.
TOPIC = "baas.triggers"
RECORD_TRIGGERS_TTL_S = 300.0
_record_triggers: invalidation.TopicCache[tuple[int, str, str], tuple[int, ...]] = (
    invalidation.TopicCache(TOPIC, key_of=lambda key, _: str(key[0]), ttl_s=RECORD_TRIGGERS_TTL_S)
)


def _enabled_record_triggers(session: Session, params: dict[str, Any]) -> list[int]:
    key = (params["app_id"], params["event"], params["table_name"])
    # A trigger changed in this very transaction is not in the feed yet: ask the table.
    if invalidation.pending(session, TOPIC):
        return list(session.scalars(_ENABLED_RECORD_TRIGGERS, params))
    return list(
        _record_triggers.read_through(
            session, key, lambda: tuple(session.scalars(_ENABLED_RECORD_TRIGGERS, params))
        )
    )


def record_events(
    session: Session,
    *,
    caller: Caller,
    info: TableInfo,
    event: TriggerEvent,
    records: list[dict[str, Any]],
) -> int:
    """Fire the app's triggers on ``event`` of each record; returns how many events fired.

    Called while the records are in the table (after insert or update, before delete), so
    a trigger's filter is evaluated by the same SQL as a query. Fired inside the caller's
    transaction: a change rolled back fires nothing."""
    params = {"app_id": caller.app_id, "event": str(event), "table_name": info.name}
    ids = _enabled_record_triggers(session, params)
    if not ids:
        return 0
    triggers = list(
        session.scalars(select(Trigger).where(Trigger.id.in_(ids)).order_by(Trigger.id))
    )
    fired = 0
    for trigger in triggers:
        chosen = records
        if trigger.filter:
            t = info.sql
            condition = _compiler(session, caller.app_id).compile(info, trigger.filter)
            ids = [r["id"] for r in records]
            hits = set(session.scalars(select(t.c.id).where(t.c.id.in_(ids), condition)))
            chosen = [r for r in records if r["id"] in hits]
        for record in chosen:
            enqueue(
                session,
                trigger=trigger,
                event=event,
                payload={"table": info.name, "record": record},
            )
            fired += 1
    return fired


def _trigger_changed(_mapper: Any, _connection: Any, target: Trigger) -> None:
    session = object_session(target)
    if session is not None:
        invalidation.changed(session, TOPIC, str(target.app_id))


for _change in ("after_insert", "after_update", "after_delete"):
    sa_event.listen(Trigger, _change, _trigger_changed)


# The org events each org's chain has enabled triggers on, held per process like the
# record triggers above: an event goes out on every coupon sent, each in a transaction of
# its own, and almost always hears "none". Any trigger change (topic ``baas.triggers``)
# or a move in the org tree drops the lot; a trigger changed in the transaction is read
# from the table. The triggers themselves are read only when there are some.
_org_events: invalidation.TopicCache[int, dict[str, tuple[int, ...]]] = invalidation.TopicCache(
    "baas.triggers.by_org",
    key_of=lambda org_id, _: str(org_id),
    ttl_s=RECORD_TRIGGERS_TTL_S,
    cleared_by=(TOPIC, ORG_TREE_TOPIC),
)

_ENABLED_ORG_TRIGGERS = (
    select(_trigger_table.id, _trigger_table.event)
    .where(
        _trigger_table.org_id.in_(bindparam("chain", expanding=True)),
        _trigger_table.enabled.is_(True),
    )
    .order_by(_trigger_table.id)
)


def _read_org_events(session: Session, org_id: int) -> dict[str, tuple[int, ...]]:
    org = session.get(Org, org_id)
    chain = [int(part) for part in org.path.strip("/").split("/") if part] if org else []
    by_event: dict[str, list[int]] = {}
    for trigger_id, event in session.execute(_ENABLED_ORG_TRIGGERS, {"chain": chain}):
        by_event.setdefault(str(event), []).append(int(trigger_id))
    return {event: tuple(ids) for event, ids in by_event.items()}


def _org_trigger_ids(session: Session, org_id: int) -> dict[str, tuple[int, ...]]:
    if invalidation.pending(session, TOPIC):
        return _read_org_events(session, org_id)
    return _org_events.read_through(session, org_id, lambda: _read_org_events(session, org_id))


def _org_triggers(session: Session, org_id: int, event: hooks.OrgEvent) -> list[Trigger]:
    """The enabled triggers of ``org_id``'s chain on ``event``."""
    found = (session.get(Trigger, i) for i in _org_trigger_ids(session, org_id).get(str(event), ()))
    return [t for t in found if t is not None and t.enabled]


def _on_org_event(
    session: Session,
    org_id: int,
    event: hooks.OrgEvent,
    payloads: Sequence[dict[str, Any]],
    request_ids: Sequence[str | None],
) -> None:
    """Fire the triggers on ``event`` of every app whose org covers ``org_id``, once for
    each payload, each under its request's id."""
    triggers = _org_triggers(session, org_id, event)
    if not triggers:
        return  # the usual answer, held per process: nothing to do per payload
    for payload, request_id in zip(payloads, request_ids, strict=True):
        with request_scope(request_id):
            for trigger in triggers:
                fired = {"org_id": org_id, **payload}
                enqueue(session, trigger=trigger, event=str(event), payload=fired)


hooks.subscribe(_on_org_event)


# -- incoming webhooks ----------------------------------------------------------------------


def incoming_trigger(session: Session, *, trigger_id: int) -> Trigger:
    """The enabled incoming-webhook trigger ``trigger_id``; anything else is not found.
    Callers look it up before they read a body sent to it."""
    trigger = session.get(Trigger, trigger_id)
    if trigger is None or trigger.event != TriggerEvent.INCOMING or not trigger.enabled:
        raise NotFound(TriggersError.NOT_FOUND, f"trigger {trigger_id} not found")
    return trigger


def receive_incoming(
    session: Session, *, trigger_id: int, body: bytes, timestamp: str | None, signature: str | None
) -> Delivery:
    """Accept a signed call to an incoming-webhook trigger: the event is stored (and the
    caller answered) only once it is durable."""
    trigger = incoming_trigger(session, trigger_id=trigger_id)
    secret = signing.trigger_secret(trigger)
    try:
        ts = int(timestamp or "")
    except ValueError:
        ts = 0
    if secret is None or not signing.verify(
        secret, ts, body, signature or "", now_s=now().timestamp()
    ):
        # Same answer for a bad signature and a stale timestamp: no oracle for forgers.
        raise Unauthenticated(
            TriggersError.BAD_SIGNATURE,
            "X-Gonghui-Signature does not match the body and X-Gonghui-Timestamp",
        )
    try:
        data: Any = json.loads(body) if body else None
    except ValueError as exc:
        raise InvalidInput(TriggersError.BAD_TRIGGER, "the body is not JSON") from exc
    return enqueue(session, trigger=trigger, event=TriggerEvent.INCOMING, payload={"body": data})


# -- the delivery log -------------------------------------------------------------------------


def list_deliveries(
    session: Session,
    *,
    actor: Actor,
    app_id: int,
    status: str | None = None,
    trigger_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    get_app(session, actor=actor, app_id=app_id)
    where = [Delivery.app_id == app_id]
    if trigger_id:
        where.append(Delivery.trigger_id == trigger_id)
    return delivery_engine.log_page(
        session, *where, status=status, before_id=before_id, limit=limit
    )


def get_delivery(
    session: Session, *, actor: Actor, app_id: int, delivery_id: int
) -> tuple[Delivery, list[DeliveryAttempt]]:
    get_app(session, actor=actor, app_id=app_id)
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.app_id != app_id:
        raise NotFound(TriggersError.DELIVERY_NOT_FOUND, f"delivery {delivery_id} not found")
    return delivery, delivery_engine.attempts_of(session, delivery.id)


def redeliver(session: Session, *, actor: Actor, app_id: int, delivery_id: int) -> Delivery:
    """Send a delivered or dead-lettered event again; its attempt log keeps the history."""
    delivery, _ = get_delivery(session, actor=actor, app_id=app_id, delivery_id=delivery_id)
    trigger = session.get_one(Trigger, delivery.trigger_id)
    delivery_engine.resend(session, delivery, max_attempts=trigger.max_attempts)
    audit.record(
        session,
        actor=actor,
        action="triggers.redeliver",
        org_id=delivery_org(session, delivery),
        subject_type="delivery",
        subject_id=delivery.id,
    )
    return delivery


def delivery_org(session: Session, delivery: Delivery) -> int | None:
    trigger = session.get(Trigger, delivery.trigger_id) if delivery.trigger_id else None
    return trigger.org_id if trigger else None

"""Delivering stored events to their targets, at least once, as tasks on the queue.

Firing a trigger writes a delivery row and defers its task in the same transaction
(:func:`gonghui.baas.triggers.service.enqueue`); the task (:func:`send`) runs on a worker
(:mod:`gonghui.tasks`), sends outside any transaction and writes the attempt. A failure
is retried with the queue's exponential backoff and dead-lettered after the trigger's
``max_attempts``; a dead delivery can be redelivered by hand. Receivers de-duplicate by
the event id.

Webhooks go out through :mod:`gonghui.outbound` (public addresses only, one deadline, the
answer capped). A worker runs at most ``delivery_per_app_concurrency`` deliveries of one
app at once (the app is the task's slot, :mod:`gonghui.tasks.queue`), so an app whose
endpoint hangs until the deadline holds only its own slots while the other apps'
deliveries go on.

A delivery runs under the id of the request that stored its event (its log line, and the
invocation of a function it runs, carry it). ``/metrics`` reads the deliveries: how many
are pending, how old the oldest is, how many are dead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from gonghui import metrics, outbound, tasks
from gonghui.baas.permissions import Caller
from gonghui.baas.triggers.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    TargetKind,
    Trigger,
)
from gonghui.baas.triggers.signing import signature, standard_signature, trigger_secret
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.hooks import LazyModules
from gonghui.orgs.models import Org
from gonghui.outbound import OutboundError
from gonghui.settings import get_settings

log = logging.getLogger("gonghui.deliveries")

TASK = "deliveries.send"

# Only the status and the start of an error's body are kept; the rest is never read.
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "gonghui-webhooks/1"
# A run holds its worker thread at most this long (a function's own limit is shorter).
TIME_LIMIT_S = 120.0


class Scheme(StrEnum):
    """How a webhook is signed: apps' triggers with our own headers, OAuth clients'
    endpoints as Standard Webhooks (:mod:`gonghui.baas.triggers.signing`)."""

    GONGHUI = "gonghui"
    STANDARD = "standard"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event_id: str
    event: str
    payload: dict[str, Any]
    created_at: str
    target_kind: str
    app_id: int | None
    org_id: int
    function_name: str | None
    webhook_url: str | None
    secret: str | None
    scheme: Scheme = Scheme.GONGHUI


@dataclass(frozen=True)
class EndpointTarget:
    """Where an endpoint's delivery goes; ``refused`` says why it goes nowhere (the
    endpoint deleted, its client disabled)."""

    org_id: int
    url: str
    secret: str
    refused: str | None = None


# Deliveries to an OAuth client's webhook endpoint are resolved by the module that owns the
# endpoints; it registers here when imported (it imports this module, so this one names it
# only for the loader).
EndpointResolver = Callable[[Session, int], EndpointTarget | None]
_endpoint_resolvers: list[EndpointResolver] = []
ENDPOINT_MODULES = LazyModules("gonghui.openplatform.webhooks")


def resolves_endpoints(resolver: EndpointResolver) -> EndpointResolver:
    _endpoint_resolvers.append(resolver)
    return resolver


def _endpoint(session: Session, endpoint_id: int) -> EndpointTarget | None:
    ENDPOINT_MODULES.load()
    for resolver in _endpoint_resolvers:
        if (target := resolver(session, endpoint_id)) is not None:
            return target
    return None


def _load(delivery_id: int) -> Claimed | str | None:
    """The delivery to send, None when there is nothing to do (delivered already, or gone
    with its app), or why it can never be sent."""
    with unit_of_work(read_only=True) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.status == DeliveryStatus.DELIVERED:
            return None
        common: dict[str, Any] = {
            "delivery_id": delivery.id,
            "event_id": delivery.event_id,
            "event": delivery.event,
            "payload": delivery.payload,
            "created_at": delivery.created_at.isoformat(),
        }
        if delivery.endpoint_id is not None:
            target = _endpoint(session, delivery.endpoint_id)
            if target is None or target.refused:
                return target.refused if target else "the endpoint no longer exists"
            return Claimed(
                **common,
                target_kind=TargetKind.WEBHOOK,
                app_id=None,
                org_id=target.org_id,
                function_name=None,
                webhook_url=target.url,
                secret=target.secret,
                scheme=Scheme.STANDARD,
            )
        trigger = session.get(Trigger, delivery.trigger_id) if delivery.trigger_id else None
        if trigger is None:
            return None
        return Claimed(
            **common,
            target_kind=trigger.target_kind,
            app_id=trigger.app_id,
            org_id=trigger.org_id,
            function_name=trigger.function_name,
            webhook_url=trigger.webhook_url,
            secret=trigger_secret(trigger),
        )


def _body(item: Claimed) -> dict[str, Any]:
    if item.scheme is Scheme.STANDARD:
        # The payload shape Standard Webhooks recommends: type, timestamp, data.
        return {"type": item.event, "timestamp": item.created_at, "data": item.payload}
    return {
        "id": item.event_id,
        "event": item.event,
        "created_at": item.created_at,
        "data": item.payload,
    }


def _signed_headers(item: Claimed, body: bytes) -> dict[str, str]:
    assert item.secret is not None
    timestamp = int(now().timestamp())
    if item.scheme is Scheme.STANDARD:
        return {
            "webhook-id": item.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(item.secret, item.event_id, timestamp, body),
        }
    return {
        "X-Gonghui-Event-Id": item.event_id,
        "X-Gonghui-Event": item.event,
        "X-Gonghui-Timestamp": str(timestamp),
        "X-Gonghui-Signature": signature(item.secret, timestamp, body),
    }


def _send_webhook(item: Claimed) -> tuple[bool, int | None, str | None]:
    assert item.webhook_url is not None
    body = json.dumps(_body(item), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **_signed_headers(item, body),
    }
    try:
        response = outbound.fetch(
            "POST",
            item.webhook_url,
            content=body,
            headers=list(headers.items()),
            timeout_s=get_settings().outbound_timeout_s,
            max_response_bytes=MAX_ANSWER_BYTES,
            truncate=True,
        )
    except OutboundError as exc:
        return False, None, f"{exc.code}: {exc.message}"[:500]
    if 200 <= response.status < 300:
        return True, response.status, None
    text = response.body[:600].decode("utf-8", errors="replace")[:200]
    return False, response.status, f"HTTP {response.status}: {text}"


def _run_function(item: Claimed) -> tuple[bool, int | None, str | None]:
    # Imported here: functions write records, whose triggers defer this module's task.
    from gonghui.baas.functions.invoke import invoke

    assert item.function_name is not None
    with unit_of_work(read_only=True) as session:
        org = session.get(Org, item.org_id)
        org_path = org.path if org else None
    if org_path is None:
        # Never a wider scope than the app's own subtree: without its org, nothing runs.
        return False, None, f"the app's org {item.org_id} no longer exists"
    assert item.app_id is not None
    caller = Caller(app_id=item.app_id, org_id=item.org_id, org_path=org_path, server=True)
    try:
        done = invoke(
            caller=caller, name=item.function_name, event=_body(item), source_kind="trigger"
        )
    except Exception as exc:  # a missing function, a full pool: retried like a failed POST
        return False, None, f"{type(exc).__name__}: {exc}"[:500]
    if done.outcome.status == "ok":
        return True, None, None
    return False, None, json.dumps(done.outcome.error)[:500]


def _settle(
    item: Claimed,
    run: tasks.Run,
    ok: bool,
    status_code: int | None,
    error: str | None,
    ms: float,
) -> float | None:
    """Write the attempt and the delivery's state; returns the delay before the next try
    (None: delivered, or out of attempts)."""
    at = now()
    retry_in: float | None = None
    with unit_of_work() as session:
        session.add(
            DeliveryAttempt(
                delivery_id=item.delivery_id,
                ok=ok,
                status_code=status_code,
                error=error,
                duration_ms=round(ms, 3),
            )
        )
        values: dict[str, Any] = {"attempts": run.attempt}
        if ok:
            values |= {
                "status": DeliveryStatus.DELIVERED,
                "delivered_at": at,
                "last_error": None,
            }
            tasks.complete(session)  # delivered and done in one commit
        elif run.attempt >= run.max_attempts:
            values |= {"status": DeliveryStatus.DEAD, "last_error": error}
        else:
            retry_in = tasks.backoff_s(run.attempt)
            values |= {"next_attempt_at": at + timedelta(seconds=retry_in), "last_error": error}
        session.execute(
            update(Delivery)
            .where(Delivery.id == item.delivery_id, Delivery.status != DeliveryStatus.DELIVERED)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return retry_in


def _dead(args: dict[str, Any], error: str) -> None:
    """A delivery whose task was dead-lettered without settling it (its worker died on the
    last attempt) is dead too."""
    with unit_of_work() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == args["delivery_id"], Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.DEAD, last_error=error[:500])
            .execution_options(synchronize_session=False)
        )


def _app_slot(args: dict[str, Any]) -> str | None:
    app_id = args.get("app_id")
    if app_id is not None:
        return f"app:{app_id}"
    endpoint_id = args.get("endpoint_id")
    return f"endpoint:{endpoint_id}" if endpoint_id is not None else None


@tasks.task(
    TASK,
    max_attempts=8,
    time_limit_s=TIME_LIMIT_S,
    on_dead=_dead,
    slot=_app_slot,
    slot_limit=lambda: get_settings().delivery_per_app_concurrency,
)
def send(delivery_id: int, app_id: int | None = None, endpoint_id: int | None = None) -> None:
    """The task: send one delivery (the request that stored its event is the run's), at
    most ``delivery_per_app_concurrency`` of one app (or one endpoint) at once in a worker."""
    run = tasks.current()
    assert run is not None
    item = _load(delivery_id)
    if item is None:
        return
    if isinstance(item, str):
        _dead({"delivery_id": delivery_id}, item)
        return
    started = time.monotonic()
    if item.target_kind == TargetKind.WEBHOOK:
        ok, status_code, error = _send_webhook(item)
    else:
        ok, status_code, error = _run_function(item)
    ms = (time.monotonic() - started) * 1000
    retry_in = _settle(item, run, ok, status_code, error, ms)
    fields = {
        "delivery_id": item.delivery_id,
        "event": item.event,
        "attempt": run.attempt,
        "status": status_code,
        "ms": round(ms, 2),
    }
    if ok:
        log.info("delivered", extra={"fields": fields})
        return
    log.warning("delivery failed", extra={"fields": {**fields, "error": error}})
    raise tasks.Retry(error or "failed", after_s=retry_in)


def store(session: Session, delivery: Delivery, *, max_attempts: int) -> Delivery:
    """Write ``delivery`` (of a trigger or an endpoint) and the task that sends it after
    commit, in the caller's transaction."""
    session.add(delivery)
    session.flush()
    _defer(session, delivery, max_attempts=max_attempts)
    return delivery


def resend(session: Session, delivery: Delivery, *, max_attempts: int) -> Delivery:
    """Send a delivered or dead-lettered delivery again; its attempt log keeps the history."""
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now()
    delivery.attempts = 0
    _defer(session, delivery, max_attempts=max_attempts)
    return delivery


def _defer(session: Session, delivery: Delivery, *, max_attempts: int) -> None:
    slot = {"app_id": delivery.app_id} if delivery.app_id is not None else {}
    if delivery.endpoint_id is not None:
        slot = {"endpoint_id": delivery.endpoint_id}
    tasks.defer(session, TASK, max_attempts=max_attempts, delivery_id=delivery.id, **slot)


def log_page(
    session: Session,
    *where: ColumnElement[bool],
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """A subscriber's deliveries (``where`` names it), newest first, at most 200 a page."""
    stmt = select(Delivery).where(*where)
    if status:
        stmt = stmt.where(Delivery.status == status)
    if before_id:
        stmt = stmt.where(Delivery.id < before_id)
    return list(session.scalars(stmt.order_by(Delivery.id.desc()).limit(min(max(limit, 1), 200))))


def attempts_of(session: Session, delivery_id: int) -> list[DeliveryAttempt]:
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
    )


def last_status_codes(session: Session, delivery_ids: list[int]) -> dict[int, int | None]:
    """The HTTP status of each delivery's latest attempt (None: no answer, or not tried)."""
    if not delivery_ids:
        return {}
    latest = (
        select(func.max(DeliveryAttempt.id))
        .where(DeliveryAttempt.delivery_id.in_(delivery_ids))
        .group_by(DeliveryAttempt.delivery_id)
    )
    rows = session.execute(
        select(DeliveryAttempt.delivery_id, DeliveryAttempt.status_code).where(
            DeliveryAttempt.id.in_(latest)
        )
    )
    return dict(rows.all())


# -- what operators read at /metrics ----------------------------------------------------------


@metrics.at_scrape
def _queue() -> Iterator[Metric]:
    with unit_of_work(read_only=True) as session:
        pending, oldest = session.execute(
            select(func.count(), func.min(Delivery.created_at)).where(
                Delivery.status == DeliveryStatus.PENDING
            )
        ).one()
        dead = session.scalar(select(func.count()).where(Delivery.status == DeliveryStatus.DEAD))
    yield GaugeMetricFamily(
        "gonghui_delivery_queue_depth",
        "Event deliveries (webhooks, trigger invocations) pending: due, or waiting to retry",
        value=pending,
    )
    lag = (now() - oldest).total_seconds() if oldest is not None else 0.0
    yield GaugeMetricFamily(
        "gonghui_delivery_lag_seconds",
        "Age of the oldest pending delivery (0 when none is pending)",
        value=max(lag, 0.0),
    )
    yield GaugeMetricFamily(
        "gonghui_deliveries_dead", "Deliveries that ran out of attempts", value=dead or 0
    )

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select, update

from gonghui import metrics, outbound, tasks
from gonghui.baas.permissions import Caller
from gonghui.baas.triggers.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    TargetKind,
    Trigger,
)
from gonghui.baas.triggers.signing import signature, trigger_secret
from gonghui.clock import now
from gonghui.db import unit_of_work
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


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event_id: str
    event: str
    payload: dict[str, Any]
    created_at: str
    target_kind: str
    app_id: int
    org_id: int
    function_name: str | None
    webhook_url: str | None
    secret: str | None


def _load(delivery_id: int) -> Claimed | None:
    """The delivery to send, or None when there is nothing to do (delivered already, or
    gone with its app)."""
    with unit_of_work(read_only=True) as session:
        row = session.execute(
            select(Delivery, Trigger)
            .join(Trigger, Trigger.id == Delivery.trigger_id)
            .where(Delivery.id == delivery_id)
        ).first()
        if row is None:
            return None
        delivery, trigger = row
        if delivery.status == DeliveryStatus.DELIVERED:
            return None
        return Claimed(
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            event=delivery.event,
            payload=delivery.payload,
            created_at=delivery.created_at.isoformat(),
            target_kind=trigger.target_kind,
            app_id=trigger.app_id,
            org_id=trigger.org_id,
            function_name=trigger.function_name,
            webhook_url=trigger.webhook_url,
            secret=trigger_secret(trigger),
        )


def _body(item: Claimed) -> dict[str, Any]:
    return {
        "id": item.event_id,
        "event": item.event,
        "created_at": item.created_at,
        "data": item.payload,
    }


def _send_webhook(item: Claimed) -> tuple[bool, int | None, str | None]:
    assert item.webhook_url is not None
    assert item.secret is not None
    body = json.dumps(_body(item), ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Gonghui-Event-Id": item.event_id,
        "X-Gonghui-Event": item.event,
        "X-Gonghui-Timestamp": str(timestamp),
        "X-Gonghui-Signature": signature(item.secret, timestamp, body),
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
    return f"app:{app_id}" if app_id is not None else None


@tasks.task(
    TASK,
    max_attempts=8,
    time_limit_s=TIME_LIMIT_S,
    on_dead=_dead,
    slot=_app_slot,
    slot_limit=lambda: get_settings().delivery_per_app_concurrency,
)
def send(delivery_id: int, app_id: int | None = None) -> None:
    """The task: send one delivery (the request that stored its event is the run's), at
    most ``delivery_per_app_concurrency`` of one app at once in a worker."""
    run = tasks.current()
    assert run is not None
    item = _load(delivery_id)
    if item is None:
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

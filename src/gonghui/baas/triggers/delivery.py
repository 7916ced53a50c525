"""The dispatcher: delivers stored events to their targets, at least once.

A delivery is claimed with a lease (an atomic UPDATE that only one process wins), sent
outside any transaction, and its result written back. A process that dies mid-delivery
leaves the lease to expire and another process (or itself after restart) sends it again;
receivers de-duplicate by the event id. Failures are retried with exponential backoff and
dead-lettered after the trigger's ``max_attempts``; a dead delivery can be redelivered
by hand.

Webhooks go out through :mod:`gonghui.outbound` (public addresses only, one deadline, the
answer capped). Each process sends up to ``delivery_concurrency`` deliveries at once and at
most ``delivery_per_app_concurrency`` of one app, so an app whose endpoint hangs until the
deadline holds only its own slots while the other apps' deliveries go on.

A delivery runs under the id of the request that stored its event (its log line, and the
invocation of a function it runs, carry it). ``/metrics`` reads the queue: how many
deliveries are pending, how old the oldest is, how many are dead.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import and_, func, or_, select, update

from gonghui import metrics, outbound
from gonghui.baas.functions.invoke import invoke
from gonghui.baas.permissions import Caller
from gonghui.baas.triggers.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    TargetKind,
    Trigger,
)
from gonghui.baas.triggers.service import trigger_secret
from gonghui.baas.triggers.signing import signature
from gonghui.baas.triggers.wakeup import due as _wakeup
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.observability import request_scope
from gonghui.orgs.models import Org
from gonghui.outbound import OutboundError
from gonghui.settings import get_settings

log = logging.getLogger("gonghui.deliveries")

BACKOFF_CAP_S = 3600
# Only the status and the start of an error's body are kept; the rest is never read.
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "gonghui-webhooks/1"


def backoff_s(attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1-based): the base (10 s) doubling up to an
    hour, ±10 % so that a receiver's outage does not end in a thundering herd."""
    base = min(get_settings().delivery_backoff_base_s * 2 ** (attempt - 1), BACKOFF_CAP_S)
    return float(base * random.uniform(0.9, 1.1))


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    event_id: str
    event: str
    payload: dict[str, Any]
    created_at: str
    attempt: int
    max_attempts: int
    target_kind: str
    app_id: int
    org_id: int
    function_name: str | None
    webhook_url: str | None
    secret: str | None
    request_id: str | None = None


def _claim(limit: int, *, busy: Counter[int], per_app: int) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries, leaving out apps that already have ``per_app``
    deliveries in flight (``busy``) or would have with this batch."""
    at = now()
    claimed: list[Claimed] = []
    taken = Counter(busy)
    full = [app_id for app_id, n in busy.items() if n >= per_app]
    with unit_of_work() as session:
        due = session.execute(
            select(Delivery, Trigger)
            .join(Trigger, Trigger.id == Delivery.trigger_id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= at,
                or_(Delivery.locked_until.is_(None), Delivery.locked_until < at),
                Trigger.app_id.not_in(full),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit * per_app)
        ).all()
        for delivery, trigger in due:
            if len(claimed) >= limit:
                break
            if taken[trigger.app_id] >= per_app:
                continue
            won = rowcount(
                session.execute(
                    update(Delivery)
                    .where(
                        Delivery.id == delivery.id,
                        Delivery.status == DeliveryStatus.PENDING,
                        or_(Delivery.locked_until.is_(None), Delivery.locked_until < at),
                    )
                    .values(
                        locked_until=at + timedelta(seconds=get_settings().delivery_lease_s),
                        attempts=Delivery.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
            if won != 1:
                continue
            taken[trigger.app_id] += 1
            claimed.append(
                Claimed(
                    delivery_id=delivery.id,
                    event_id=delivery.event_id,
                    event=delivery.event,
                    payload=delivery.payload,
                    created_at=delivery.created_at.isoformat(),
                    attempt=delivery.attempts + 1,
                    max_attempts=trigger.max_attempts,
                    target_kind=trigger.target_kind,
                    app_id=trigger.app_id,
                    org_id=trigger.org_id,
                    function_name=trigger.function_name,
                    webhook_url=trigger.webhook_url,
                    secret=trigger_secret(trigger),
                    request_id=delivery.request_id,
                )
            )
    return claimed


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


def _settle(item: Claimed, ok: bool, status_code: int | None, error: str | None, ms: float) -> None:
    at = now()
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
        if ok:
            values: dict[str, Any] = {
                "status": DeliveryStatus.DELIVERED,
                "delivered_at": at,
                "locked_until": None,
                "last_error": None,
            }
        elif item.attempt >= item.max_attempts:
            values = {"status": DeliveryStatus.DEAD, "locked_until": None, "last_error": error}
        else:
            values = {
                "next_attempt_at": at + timedelta(seconds=backoff_s(item.attempt)),
                "locked_until": None,
                "last_error": error,
            }
        session.execute(
            update(Delivery)
            .where(and_(Delivery.id == item.delivery_id, Delivery.status == DeliveryStatus.PENDING))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def deliver(item: Claimed) -> bool:
    with request_scope(item.request_id):  # the request that stored the event
        started = time.monotonic()
        if item.target_kind == TargetKind.WEBHOOK:
            ok, status_code, error = _send_webhook(item)
        else:
            ok, status_code, error = _run_function(item)
        ms = (time.monotonic() - started) * 1000
        _settle(item, ok, status_code, error, ms)
        fields = {
            "delivery_id": item.delivery_id,
            "event": item.event,
            "attempt": item.attempt,
            "status": status_code,
            "ms": round(ms, 2),
        }
        if ok:
            log.info("delivered", extra={"fields": fields})
        else:
            log.warning("delivery failed", extra={"fields": {**fields, "error": error}})
    return ok


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


class _Sender:
    """This process's deliveries in flight, on a pool of ``delivery_concurrency`` threads,
    counted per app so that one app never holds more than its share of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: Counter[int] = Counter()
        self._pool: ThreadPoolExecutor | None = None

    def launch(self, limit: int) -> set[Future[bool]]:
        """Claim what is due and fits in the free slots, and start sending it."""
        settings = get_settings()
        with self._lock:
            free = min(limit, settings.delivery_concurrency - sum(self._busy.values()))
            if free <= 0:
                return set()
            items = _claim(free, busy=+self._busy, per_app=settings.delivery_per_app_concurrency)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    settings.delivery_concurrency, thread_name_prefix="delivery"
                )
            futures = set()
            for item in items:
                self._busy[item.app_id] += 1
                futures.add(self._pool.submit(self._run, item))
            return futures

    def _run(self, item: Claimed) -> bool:
        try:
            return deliver(item)
        except Exception:  # the lease expires and another pass sends it again
            log.exception("delivery %s failed to run", item.delivery_id)
            return False
        finally:
            with self._lock:
                self._busy[item.app_id] -= 1
            _wakeup.set()  # a slot is free: the dispatcher may start what waits for it

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


_sender = _Sender()


def run_due(*, limit: int = 50) -> int:
    """Deliver what is due now (up to ``limit``) and wait for it; returns how many deliveries
    were attempted."""
    attempted = 0
    running: set[Future[bool]] = set()
    while True:
        started = _sender.launch(limit - attempted) if attempted < limit else set()
        attempted += len(started)
        running |= started
        if not running:
            return attempted
        _, running = wait(running, return_when=FIRST_COMPLETED)


# -- the background thread ----------------------------------------------------------------

_thread: threading.Thread | None = None
_stop = threading.Event()
_thread_lock = threading.Lock()


def start(*, poll_s: float = 1.0) -> None:
    """Run the dispatcher in a daemon thread of this process (idempotent)."""
    global _thread
    with _thread_lock:
        if _thread is not None and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(target=_loop, args=(poll_s,), name="deliveries", daemon=True)
        _thread.start()


def stop() -> None:
    """Stop the dispatcher and wait for the deliveries in flight (each ends by its deadline)."""
    global _thread
    with _thread_lock:
        _stop.set()
        _wakeup.set()
        thread, _thread = _thread, None
    if thread is not None:
        thread.join(timeout=30)
    _sender.close()


def _loop(poll_s: float) -> None:
    while not _stop.is_set():
        _wakeup.clear()
        try:
            # Never waits for a delivery: a slow one holds its slot, not the dispatcher.
            _sender.launch(get_settings().delivery_concurrency)
        except Exception:
            log.exception("dispatcher pass failed")
        _wakeup.wait(poll_s)

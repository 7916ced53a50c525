"""The dispatcher: delivers stored events to their targets, at least once.

A delivery is claimed with a lease (an atomic UPDATE that only one process wins), sent
outside any transaction, and its result written back. A process that dies mid-delivery
leaves the lease to expire and another process (or itself after restart) sends it again;
receivers de-duplicate by the event id. Failures are retried with exponential backoff and
dead-lettered after the trigger's ``max_attempts``; a dead delivery can be redelivered
by hand.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import and_, or_, select, update

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
from gonghui.orgs.models import Org
from gonghui.settings import get_settings

log = logging.getLogger("gonghui.deliveries")

BACKOFF_CAP_S = 3600
HTTP_TIMEOUT_S = 10.0
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


def _claim(limit: int) -> list[Claimed]:
    at = now()
    claimed: list[Claimed] = []
    with unit_of_work() as session:
        due = session.execute(
            select(Delivery, Trigger)
            .join(Trigger, Trigger.id == Delivery.trigger_id)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at <= at,
                or_(Delivery.locked_until.is_(None), Delivery.locked_until < at),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        ).all()
        for delivery, trigger in due:
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
        response = httpx.post(
            item.webhook_url, content=body, headers=headers, timeout=HTTP_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return True, response.status_code, None
    return False, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


def _run_function(item: Claimed) -> tuple[bool, int | None, str | None]:
    assert item.function_name is not None
    with unit_of_work(read_only=True) as session:
        org = session.get(Org, item.org_id)
        org_path = org.path if org else "/"
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
    started = time.monotonic()
    if item.target_kind == TargetKind.WEBHOOK:
        ok, status_code, error = _send_webhook(item)
    else:
        ok, status_code, error = _run_function(item)
    _settle(item, ok, status_code, error, (time.monotonic() - started) * 1000)
    if not ok:
        log.warning(
            "delivery failed",
            extra={
                "fields": {"delivery_id": item.delivery_id, "attempt": item.attempt, "error": error}
            },
        )
    return ok


def run_due(*, limit: int = 50) -> int:
    """Deliver what is due now; returns how many deliveries were attempted."""
    items = _claim(limit)
    for item in items:
        deliver(item)
    return len(items)


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
    global _thread
    with _thread_lock:
        _stop.set()
        _wakeup.set()
        thread, _thread = _thread, None
    if thread is not None:
        thread.join(timeout=30)


def _loop(poll_s: float) -> None:
    while not _stop.is_set():
        try:
            while run_due() and not _stop.is_set():
                pass
        except Exception:
            log.exception("dispatcher pass failed")
        _wakeup.wait(poll_s)
        _wakeup.clear()

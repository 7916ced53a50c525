"""Cron triggers: exactly one event per tick, however many server processes run.

Each process's scheduler looks for schedule triggers whose ``next_run_at`` has come and
moves it to the following tick with a compare-and-set UPDATE (``WHERE next_run_at =`` the
value it read): of several processes, one wins the tick and enqueues its event; the
event id is the trigger and the tick, and unique, as a second guard. A tick missed while
every process was down fires when one comes back: each missed tick of the last
``CATCH_UP`` individually, older ones once for all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from gonghui.baas.triggers.models import Trigger, TriggerEvent
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.settings import get_settings

log = logging.getLogger("gonghui.schedules")

CATCH_UP = timedelta(seconds=60)


def run_due(*, limit: int = 100) -> int:
    """Fire every schedule trigger whose tick has come; returns how many fired."""
    from gonghui.baas.triggers.service import enqueue, next_tick

    at = now()
    fired = 0
    with unit_of_work() as session:
        due = list(
            session.scalars(
                select(Trigger)
                .where(
                    Trigger.event == TriggerEvent.SCHEDULE,
                    Trigger.enabled.is_(True),
                    Trigger.next_run_at <= at,
                )
                .order_by(Trigger.next_run_at)
                .limit(limit)
            )
        )
        for trigger in due:
            tick = trigger.next_run_at
            assert tick is not None
            assert trigger.cron is not None
            won = rowcount(
                session.execute(
                    update(Trigger)
                    .where(Trigger.id == trigger.id, Trigger.next_run_at == tick)
                    .values(next_run_at=next_tick(trigger.cron, max(tick, at - CATCH_UP)))
                    .execution_options(synchronize_session=False)
                )
            )
            if won != 1:
                continue
            enqueue(
                session,
                trigger=trigger,
                event=TriggerEvent.SCHEDULE,
                payload={"tick": tick.isoformat(), "trigger": trigger.name},
                event_id=f"tick:{trigger.id}:{int(tick.timestamp())}",
            )
            fired += 1
    return fired


_thread: threading.Thread | None = None
_stop = threading.Event()
_lock = threading.Lock()


def start(*, interval_s: float = 1.0, housekeeping: Callable[[], object] | None = None) -> None:
    """Fire due schedules every ``interval_s`` in a daemon thread of this process
    (idempotent), and run ``housekeeping`` on the same thread at start and then every
    ``housekeeping_interval_s``."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(
            target=_loop, args=(interval_s, housekeeping), name="schedules", daemon=True
        )
        _thread.start()


def stop() -> None:
    global _thread
    with _lock:
        _stop.set()
        thread, _thread = _thread, None
    if thread is not None:
        thread.join(timeout=30)


def _loop(interval_s: float, housekeeping: Callable[[], object] | None) -> None:
    every = get_settings().housekeeping_interval_s
    next_housekeeping = time.monotonic()  # the first pass right at start-up
    while not _stop.wait(interval_s):
        try:
            run_due()
        except Exception:
            log.exception("scheduler pass failed")
        if housekeeping is not None and time.monotonic() >= next_housekeeping:
            next_housekeeping = time.monotonic() + every
            housekeeping()

"""Cron triggers: exactly one event per tick, however many workers run.

A periodic task (every ``scheduler_interval_s``, on one worker; :mod:`gonghui.tasks`)
looks for schedule triggers whose ``next_run_at`` has come and moves it to the following
tick with a compare-and-set UPDATE (``WHERE next_run_at =`` the value it read): should two
runs overlap, one wins the tick and enqueues its event; the event id is the trigger and
the tick, and unique, as a second guard. A tick missed while every worker was down fires
when one comes back: each missed tick of the last ``CATCH_UP`` individually, older ones
once for all.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from gonghui import tasks
from gonghui.baas.triggers.models import Trigger, TriggerEvent
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.settings import get_settings

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


@tasks.periodic("triggers.cron", every_s=lambda: get_settings().scheduler_interval_s)
def fire_due() -> None:
    run_due()

"""The aggregation job on the task queue: ``analytics.aggregate`` every
``analytics_interval_s`` (incremental, or full when the last full run is older than
``analytics_full_every_s``), and ``analytics.refresh`` when staff ask for fresh figures."""

from __future__ import annotations

from datetime import timedelta

from gonghui import tasks
from gonghui.analytics import aggregate
from gonghui.analytics.models import AggregateRun
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.settings import get_settings

TIME_LIMIT_S = 1800.0


def full_run_due() -> bool:
    with unit_of_work(read_only=True) as session:
        run = session.get(AggregateRun, aggregate.NAME)
        if run is None or run.full_at is None:
            return True
        every = timedelta(seconds=get_settings().analytics_full_every_s)
        return now() - run.full_at >= every


@tasks.periodic(
    "analytics.aggregate",
    every_s=lambda: get_settings().analytics_interval_s,
    time_limit_s=TIME_LIMIT_S,
)
def aggregate_periodically() -> None:
    aggregate.recompute(full=full_run_due())


@tasks.task("analytics.refresh", max_attempts=3, time_limit_s=TIME_LIMIT_S)
def refresh(full: bool = False) -> None:
    aggregate.recompute(full=full)

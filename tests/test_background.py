"""What a worker runs besides deferred work: periodic tasks on its clock, once per window
(housekeeping, the benefits sweep, cron ticks), each a row of the queue."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from gonghui import background
from gonghui.db import unit_of_work
from gonghui.tasks import queue
from gonghui.tasks.models import Task

pytestmark = pytest.mark.database_fallback


def periodic_rows() -> dict[str, str]:
    with unit_of_work(read_only=True) as session:
        found = session.execute(select(Task.name, Task.status).where(Task.key.is_not(None)))
        return dict(found.all())


def test_a_starting_worker_runs_every_periodic_task_once() -> None:
    background.start(worker=True)
    try:
        periodic = {name for name, kind in queue.kinds().items() if kind.every_s is not None}
        assert {"housekeeping.otp_codes", "benefits.sweep", "triggers.cron"} <= periodic
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = {name for name, status in periodic_rows().items() if status == "done"}
            if periodic <= done:
                break
            time.sleep(0.05)
    finally:
        background.stop()
    rows = periodic_rows()
    assert set(rows) == periodic
    assert set(rows.values()) <= {"done", "queued"}  # queued: re-armed for a new window
    assert "dead" not in rows.values()

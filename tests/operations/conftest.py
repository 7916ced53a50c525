"""A queue holding tasks in every state, built through the queue's own functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from gonghui import clock, tasks
from gonghui.db import unit_of_work
from gonghui.hotwrite import load
from gonghui.settings import get_settings
from gonghui.tasks import queue


@tasks.task("tests.ops_job", max_attempts=1)
def job(fail: bool = False) -> None:
    if fail:
        raise RuntimeError("the receiver is down")


@tasks.task("tests.ops_report")
def report() -> None:
    pass


@tasks.grouped("tests.ops_send", hold_while=load.busy, hold_s=30.0)
def send(batch: list[dict[str, object]]) -> None:
    pass


@dataclass(frozen=True)
class Queue:
    dead_id: int
    worker_id: int


def queue_in_every_state(request: pytest.FixtureRequest) -> Queue:
    """Of ``tests.ops_job``: one dead, one waiting to retry, one due for 20 s, one sent to
    a live worker (this process, registered as one until the test ends); of
    ``tests.ops_report``: one waiting for its delay. And a worker that stopped beating."""
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(get_settings(), "task_backoff_base_s", 1000.0)
    request.addfinalizer(queue.unregister_worker)
    queue.register_worker(host="gone.example", pid=1, threads=2)
    clock.advance(timedelta(seconds=get_settings().task_heartbeat_timeout_s + 1))
    worker_id = queue.register_worker(host="worker-1.example", pid=4242, threads=8)
    with unit_of_work() as session:
        dead_id = tasks.defer(session, "tests.ops_job", fail=True)
        tasks.defer(session, "tests.ops_job", fail=True, max_attempts=2)
        tasks.defer(session, "tests.ops_report", delay_s=3600)
    assert tasks.run_due() == 2
    with unit_of_work() as session:
        tasks.defer(session, "tests.ops_job")
    assert len(queue.claim_due()) == 1
    with unit_of_work() as session:
        tasks.defer(session, "tests.ops_job")
    clock.advance(timedelta(seconds=20))
    queue.beat()
    return Queue(dead_id=dead_id, worker_id=worker_id)

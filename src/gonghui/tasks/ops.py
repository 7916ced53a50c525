"""What operators read about the queue: its depth by task and state, its lag, the live
workers and the dead letters; the same figures at ``/metrics``.

Who may read them is the caller's business (:mod:`gonghui.operations`): this module
knows no tenancy. A task's arguments are never returned: some carry more than ids (a
roster import's carries the staff member's grants), and an allow-list per kind would be
one more thing a new kind could forget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from gonghui import metrics
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.tasks.models import Task, TaskStatus, Worker
from gonghui.tasks.queue import alive_since, due_now, unheld


class TaskState(StrEnum):
    DUE = "due"  # its time has come and no live send holds it: waiting for a worker
    # Due, but its kind gives way while members' hot writes keep this host's writer busy
    # (``hold_while`` of :func:`gonghui.tasks.grouped`), for at most its ``hold_s``.
    HELD = "held"
    WAITING = "waiting"  # for its delay or its next retry
    RUNNING = "running"  # sent to or run by a worker, its lease live
    DEAD = "dead"  # out of attempts


@dataclass(frozen=True)
class TaskCount:
    name: str
    state: TaskState
    count: int


@dataclass(frozen=True)
class LiveWorker:
    id: int
    host: str
    pid: int
    threads: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True)
class QueueSummary:
    counts: list[TaskCount]  # by name, then state; only the non-zero ones
    # How long the oldest due task has been due (0 when none); held ones are not counted,
    # as they wait on purpose and within their bound.
    oldest_due_s: float
    workers: list[LiveWorker]


@dataclass(frozen=True)
class DeadTask:
    id: int
    name: str
    attempts: int
    last_error: str | None
    request_id: str | None
    created_at: datetime
    finished_at: datetime | None


def summary(session: Session) -> QueueSummary:
    at = now()
    state = case(
        (Task.status == TaskStatus.DEAD, TaskState.DEAD.value),
        (Task.run_at > at, TaskState.WAITING.value),
        (and_(due_now(at), unheld(at)), TaskState.DUE.value),
        (due_now(at), TaskState.HELD.value),
        else_=TaskState.RUNNING.value,
    )
    # Grouped outside: PostgreSQL would not match a GROUP BY repeating the expression
    # (its parameters are bound twice).
    rows = (
        select(Task.name, state.label("state"))
        .where(Task.status.in_((TaskStatus.QUEUED, TaskStatus.DEAD)))
        .subquery()
    )
    counts = [
        TaskCount(name, TaskState(st), n)
        for name, st, n in session.execute(
            select(rows.c.name, rows.c.state, func.count())
            .group_by(rows.c.name, rows.c.state)
            .order_by(rows.c.name, rows.c.state)
        )
    ]
    oldest = session.scalar(select(func.min(Task.run_at)).where(due_now(at), unheld(at)))
    workers = [
        LiveWorker(w.id, w.host, w.pid, w.threads, w.started_at, w.heartbeat_at)
        for w in session.scalars(
            select(Worker).where(Worker.heartbeat_at >= alive_since(at)).order_by(Worker.id)
        )
    ]
    lag = (at - oldest).total_seconds() if oldest is not None else 0.0
    return QueueSummary(counts=counts, oldest_due_s=max(lag, 0.0), workers=workers)


def dead_count(session: Session) -> int:
    """How many tasks are dead-lettered (one range of the (status, run_at) index)."""
    return int(
        session.scalar(select(func.count(Task.id)).where(Task.status == TaskStatus.DEAD)) or 0
    )


def dead_tasks(session: Session, *, limit: int, before_id: int | None = None) -> list[DeadTask]:
    """Dead-lettered tasks, newest first (by id); ``before_id`` pages on."""
    query = select(
        Task.id,
        Task.name,
        Task.attempts,
        Task.last_error,
        Task.request_id,
        Task.created_at,
        Task.finished_at,
    ).where(Task.status == TaskStatus.DEAD)
    if before_id is not None:
        query = query.where(Task.id < before_id)
    return [DeadTask(*row) for row in session.execute(query.order_by(Task.id.desc()).limit(limit))]


def status_of(session: Session, task_id: int) -> str | None:
    """The task's status, or None when there is no such task."""
    return session.scalar(select(Task.status).where(Task.id == task_id))


@metrics.at_scrape
def _queue() -> Iterator[Metric]:
    with unit_of_work(read_only=True) as session:
        read = summary(session)
    tasks = GaugeMetricFamily(
        "gonghui_tasks",
        "Tasks by name and state: due, held (giving way to members' hot writes), "
        "waiting (a delay or a retry), running, dead",
        labels=["name", "state"],
    )
    for c in read.counts:
        tasks.add_metric([c.name, c.state.value], c.count)
    yield tasks
    yield GaugeMetricFamily(
        "gonghui_task_lag_seconds",
        "How long the oldest due task has been due, held ones aside (0 when none is)",
        value=read.oldest_due_s,
    )
    yield GaugeMetricFamily(
        "gonghui_task_workers", "Workers alive (beating)", value=len(read.workers)
    )

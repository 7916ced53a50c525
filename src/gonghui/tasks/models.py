"""The task table: the queue's durable state (see :mod:`gonghui.tasks`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class TaskStatus(StrEnum):
    QUEUED = "queued"  # waiting, sent to the broker, running, or waiting to retry
    DONE = "done"
    DEAD = "dead"  # out of attempts: an operator may run it again


class Task(Base):
    __tablename__ = "tasks_task"
    __table_args__ = (Index("ix_tasks_task_due", "status", "run_at"),)

    id: Mapped[IdPk]
    name: Mapped[str] = mapped_column(String(63))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.QUEUED)
    # Runs started (a run cut short by a crash counts), and how many it may have.
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    # Due from then on: at once, after a delay, or at its next retry.
    run_at: Mapped[datetime] = mapped_column(default=now)
    # The current send: its token is in the broker's message, which runs only while the
    # row still holds it; until ``lease_until`` no other send is made, unless the worker
    # running it (``worker_id``) stopped beating.
    token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    worker_id: Mapped[int | None] = mapped_column(BigId)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # The request that deferred it: the run's logs carry it.
    request_id: Mapped[str | None] = mapped_column(String(64))
    # At most one task per key (periodic work: one run per window, however many workers).
    key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    finished_at: Mapped[datetime | None]


class Worker(Base):
    """A running worker, beating while it lives: the tasks it runs are sent again soon
    after it stops beating (killed, or its machine gone)."""

    __tablename__ = "tasks_worker"

    id: Mapped[IdPk]
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    threads: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=now)
    heartbeat_at: Mapped[datetime] = mapped_column(default=now)

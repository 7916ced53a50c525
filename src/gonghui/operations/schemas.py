from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from gonghui.tasks.ops import TaskState


class TaskCountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    state: TaskState
    count: int


class WorkerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    host: str
    pid: int
    threads: int
    started_at: datetime
    heartbeat_at: datetime


class QueueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    counts: list[TaskCountRead]
    oldest_due_s: float
    workers: list[WorkerRead]


class DeadTaskRead(BaseModel):
    """A dead-lettered task; its arguments are left out (see :mod:`gonghui.tasks.ops`)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    attempts: int
    last_error: str | None
    request_id: str | None
    created_at: datetime
    finished_at: datetime | None


class DeadTaskPage(BaseModel):
    items: list[DeadTaskRead]
    next_before_id: int | None

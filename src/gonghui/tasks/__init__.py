"""Background work on a task queue: rows written with the caller's transaction, carried
by Dramatiq's broker to worker threads (:mod:`gonghui.tasks.queue` has the rules,
:mod:`gonghui.tasks.broker` the broker, :mod:`gonghui.tasks.runtime` the worker).

    @tasks.task("members.roster_import", max_attempts=1, time_limit_s=7200)
    def import_roster(job_id: int) -> None: ...

    tasks.defer(session, "members.roster_import", job_id=job.id)
"""

# ops registers the queue's figures at /metrics wherever the queue is imported.
from gonghui.tasks import ops, runtime
from gonghui.tasks.models import Task, TaskStatus
from gonghui.tasks.queue import (
    Retry,
    Run,
    backoff_s,
    complete,
    current,
    defer,
    defer_many,
    grouped,
    periodic,
    requeue,
    run_due,
    task,
)

__all__ = [
    "Retry",
    "Run",
    "Task",
    "backoff_s",
    "complete",
    "TaskStatus",
    "current",
    "defer",
    "defer_many",
    "grouped",
    "ops",
    "periodic",
    "requeue",
    "run_due",
    "runtime",
    "task",
]

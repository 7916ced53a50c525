"""The operators' view of the task queue: platform admins only (the rule lives here, for
the API and the console alike), and running a dead task again is audited."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.audit import service as audit
from gonghui.errors import Conflict, NotFound, PermissionDenied
from gonghui.operations.errors import OperationsError
from gonghui.tasks.models import TaskStatus
from gonghui.tasks.ops import DeadTask, QueueSummary, status_of
from gonghui.tasks.ops import dead_count as read_dead_count
from gonghui.tasks.ops import dead_tasks as read_dead_tasks
from gonghui.tasks.ops import summary as read_summary
from gonghui.tenancy import Actor


def may_operate(actor: Actor) -> bool:
    """The deployment's queue is every org's: only a platform admin sees or touches it."""
    return actor.is_platform_admin


def require_operator(actor: Actor) -> None:
    if not may_operate(actor):
        raise PermissionDenied(OperationsError.NOT_PLATFORM_ADMIN, "platform admins only")


def queue_summary(session: Session, *, actor: Actor) -> QueueSummary:
    require_operator(actor)
    return read_summary(session)


def count_dead(session: Session, *, actor: Actor) -> int:
    """Dead-lettered tasks (the console home's alert for platform admins)."""
    require_operator(actor)
    return read_dead_count(session)


def dead_tasks(
    session: Session, *, actor: Actor, limit: int, before_id: int | None = None
) -> list[DeadTask]:
    require_operator(actor)
    return read_dead_tasks(session, limit=limit, before_id=before_id)


def requeue(session: Session, *, actor: Actor, task_id: int) -> None:
    """Run a dead-lettered task again, its attempts counted afresh; written to the audit
    log. A task that is not dead (queued, done, or already requeued) is refused."""
    require_operator(actor)
    status = status_of(session, task_id)
    if status is None:
        raise NotFound(OperationsError.TASK_NOT_FOUND, "no such task")
    if not tasks.requeue(session, task_id):
        raise Conflict(
            OperationsError.TASK_NOT_DEAD,
            "only a dead-lettered task can be run again",
            {"status": status if status != TaskStatus.DEAD else "requeued"},
        )
    audit.record(
        session, actor=actor, action="tasks.requeue", subject_type="task", subject_id=task_id
    )

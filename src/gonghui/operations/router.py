from __future__ import annotations

from fastapi import APIRouter, Query, status

from gonghui.deps import CurrentStaff, SessionDep
from gonghui.operations import service
from gonghui.operations.schemas import DeadTaskPage
from gonghui.tasks.ops import QueueSummary
from gonghui.types import Id

router = APIRouter(prefix="/api/v1/ops/queue", tags=["ops"])


@router.get("")
def queue_summary(staff: CurrentStaff, session: SessionDep) -> QueueSummary:
    """The queue's depth by task and state, the oldest due task's age, the live workers."""
    return service.queue_summary(session, actor=staff)


@router.get("/dead")
def dead_tasks(
    staff: CurrentStaff,
    session: SessionDep,
    before: Id | None = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> DeadTaskPage:
    """Dead-lettered tasks, newest first; ``before`` is the last page's ``next_before_id``."""
    items = service.dead_tasks(session, actor=staff, limit=limit, before_id=before)
    return DeadTaskPage(
        items=items,
        next_before_id=items[-1].id if len(items) == limit else None,
    )


@router.post("/tasks/{task_id}/requeue", status_code=status.HTTP_204_NO_CONTENT)
def requeue_task(task_id: Id, staff: CurrentStaff, session: SessionDep) -> None:
    """Run a dead-lettered task again (audited as ``tasks.requeue``)."""
    service.requeue(session, actor=staff, task_id=task_id)

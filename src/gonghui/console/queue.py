"""Console: the task queue, for platform admins (depth, workers, dead letters)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.operations import service as operations
from gonghui.tasks.ops import TaskState
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/queue", include_in_schema=False)

PAGE = 50


def _page(
    request: Request, user: PageUser, *, before_id: int | None = None, **extra: Any
) -> Response:
    actor = _actor(request, user)
    context: dict[str, Any] = {"active": "nav.queue", "csrf_token": user.csrf_token, **extra}
    with unit_of_work(read_only=True) as session:
        summary = operations.queue_summary(session, actor=actor)
        dead = operations.dead_tasks(session, actor=actor, limit=PAGE, before_id=before_id)
    names = sorted({c.name for c in summary.counts})
    by_name = {
        name: {c.state.value: c.count for c in summary.counts if c.name == name} for name in names
    }
    next_before_id = dead[-1].id if len(dead) == PAGE else None
    context.update(
        summary=summary,
        columns=[state.value for state in TaskState],
        by_name=by_name,
        dead=dead,
        next_url=f"/console/queue?{urlencode({'before': next_before_id})}"
        if next_before_id
        else None,
    )
    return render(request, "console/queue.html", context)


@router.get("", response_class=HTMLResponse)
def queue_page(
    request: Request, user: ConsoleStaff, before: Id | None = None, done: str | None = None
) -> Response:
    return _page(request, user, before_id=before, done="queue.requeued" if done else None)


@router.post("/tasks/{task_id}/requeue", response_class=HTMLResponse)
def requeue(
    request: Request, user: ConsoleStaff, task_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            operations.requeue(session, actor=_actor(request, user), task_id=task_id)
    except DomainError as exc:
        return _page(request, user, error=error_key(exc))
    return RedirectResponse("/console/queue?done=1", status_code=303)

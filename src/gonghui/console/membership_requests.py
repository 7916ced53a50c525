"""Console queues of members' requests beside the verification reviews: applications to
join (入会申请), transfers in (转入申请) and leaving (退会申请), each approved or rejected
with a note; personal data masked as the reviews page shows it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.members import decisions, joining, requests
from gonghui.members.models import RequestKind
from gonghui.members.schemas import RejectRequest
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)


def _queue_page(
    request: Request,
    user: PageUser,
    kind: RequestKind,
    *,
    done: str | None = None,
    error: str | None = None,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        pending = [
            requests.view(session, r)
            for r in requests.list_requests(session, actor=actor, kind=kind, limit=50)
        ]
        unions = [
            (o.id, o.name, o.accepts_applications)
            for o in (joining.managed_unions(session, actor=actor) if kind == "join" else [])
        ]
    context = {
        "unions": unions,
        "active": "nav.reviews",
        "queue": str(kind),
        "csrf_token": user.csrf_token,
        "pending": pending,
        "done": done,
        "error": error,
    }
    return render(request, "console/membership_requests.html", context)


@router.get("/membership-requests", response_class=HTMLResponse)
def queue_page(
    request: Request, user: ConsoleStaff, kind: RequestKind = RequestKind.JOIN
) -> Response:
    return _queue_page(request, user, kind)


@router.get("/membership-requests/{request_id}/proof")
def request_proof(request: Request, user: ConsoleStaff, request_id: Id) -> Response:
    """A join application's proof image; viewing it is audited, so this read commits."""
    with unit_of_work() as session:
        image, content_type = requests.open_proof(
            session, actor=_actor(request, user), request_id=request_id
        )
    return Response(
        image,
        media_type=content_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


# Before the decision's route, whose {request_id} would take "settings".
@router.post("/membership-requests/settings", response_class=HTMLResponse)
def join_settings(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    accepts: Annotated[str, Form(pattern="^(open|close)$")],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Open or close one of the staff member's grassroots unions to applications."""
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            joining.set_open_to_applications(
                session, actor=_actor(request, user), org_id=org_id, accepts=accepts == "open"
            )
    except DomainError as exc:
        return _queue_page(request, user, RequestKind.JOIN, error=error_key(exc))
    return _queue_page(request, user, RequestKind.JOIN, done="requests.settings_saved")


@router.post("/membership-requests/{request_id}", response_class=HTMLResponse)
def decide(
    request: Request,
    user: ConsoleStaff,
    request_id: Id,
    kind: Annotated[RequestKind, Form()],
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    note: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    actor = _actor(request, user)
    if decision == "reject":
        try:
            RejectRequest(note=note.strip())  # the API's rule: a rejection says why
        except ValidationError:
            return _queue_page(request, user, kind, error="reviews.reject_needs_note")
    try:
        with unit_of_work() as session:
            if decision == "approve":
                decisions.approve(
                    session, actor=actor, request_id=request_id, note=note.strip() or None
                )
            else:
                decisions.reject(session, actor=actor, request_id=request_id, note=note.strip())
    except DomainError as exc:
        return _queue_page(request, user, kind, error=error_key(exc))
    return _queue_page(request, user, kind, done=f"reviews.done_{decision}")

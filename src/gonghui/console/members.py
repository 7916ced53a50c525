"""Console pages for members: roster upload with live progress, members' tags, the
verification review queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from pydantic import ValidationError

from gonghui.bodylimit import max_body, upload_limit
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.members import review, roster, roster_import
from gonghui.members.models import ImportJob, ImportStatus
from gonghui.members.schemas import RejectRequest
from gonghui.members.tags import parse_tags
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org
from gonghui.settings import get_settings
from gonghui.storage import download_response
from gonghui.tenancy import Actor, Permission
from gonghui.types import Id
from gonghui.web.errors import error_key, field_errors
from gonghui.web.i18n import translator
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/console", include_in_schema=False)

_CHUNK = 1 << 16


def _managed_orgs(session: Any, actor: Actor) -> list[Org]:
    return [
        o
        for o in orgs.list_orgs(session, actor=actor)
        if actor.can(Permission.MEMBERS_MANAGE, o.path)
    ]


def _roster_page(
    request: Request, user: PageUser, *, error: str | None = None, **context: Any
) -> Response:
    with unit_of_work(read_only=True) as session:
        managed = _managed_orgs(session, _actor(request, user))
    context |= {
        "active": "nav.roster",
        "csrf_token": user.csrf_token,
        "orgs": managed,
        "error": error,
        "max_mb": get_settings().upload_max_bytes // (1024 * 1024),
    }
    context.setdefault("tag_fields", {})
    return render(request, "console/roster.html", context)


@router.get("/roster", response_class=HTMLResponse)
def roster_page(request: Request, user: ConsoleStaff) -> Response:
    return _roster_page(request, user)


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    while chunk := upload.file.read(_CHUNK):
        yield chunk


@router.post("/roster", response_class=HTMLResponse)
@max_body(upload_limit)
def upload_roster(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            job = roster_import.accept_upload(
                session,
                actor=_actor(request, user),
                org_id=org_id,
                filename=file.filename or "roster",
                chunks=_chunks(file),
                max_bytes=get_settings().upload_max_bytes,
            )
            job_id = job.id
    except DomainError as exc:
        return _roster_page(request, user, error=error_key(exc))
    return RedirectResponse(f"/console/roster/imports/{job_id}", status_code=303)


@router.post("/roster/tags", response_class=HTMLResponse)
def set_member_tags(
    request: Request,
    user: ConsoleStaff,
    id_number: Annotated[str, Form(max_length=32)],
    tags: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Set one person's tags, found by ID number on a roster the staff member manages."""
    check_csrf(request, user, csrf)
    t = translator(request_locale(request))
    try:
        with unit_of_work() as session:
            saved = roster.set_tags_by_id_number(
                session,
                actor=_actor(request, user),
                id_number=id_number,
                tags=parse_tags(tags),
            )
    except DomainError as exc:
        fields = field_errors(exc, t)
        return _roster_page(
            request,
            user,
            error=None if fields else error_key(exc),
            tag_fields=fields,
            tag_id_number=id_number,
            tags=tags,
        )
    return _roster_page(request, user, tags_saved=saved)


def _job_context(job: ImportJob) -> dict[str, Any]:
    finished = job.status in (ImportStatus.DONE, ImportStatus.FAILED)
    percent = (
        100 if finished else (100 * job.bytes_done // job.bytes_total if job.bytes_total else 0)
    )
    return {"job": job, "finished": finished, "percent": min(percent, 100)}


@router.get("/roster/imports/{job_id}", response_class=HTMLResponse)
def import_page(request: Request, user: ConsoleStaff, job_id: Id) -> Response:
    with unit_of_work(read_only=True) as session:
        job = roster_import.get_job(session, actor=_actor(request, user), job_id=job_id)
        context = _job_context(job)
    context.update(active="nav.roster", csrf_token=user.csrf_token)
    return render(request, "console/import.html", context)


@router.get("/roster/imports/{job_id}/progress", response_class=HTMLResponse)
def import_progress(request: Request, user: ConsoleStaff, job_id: Id) -> Response:
    """The progress fragment HTMX polls until the import has finished."""
    with unit_of_work(read_only=True) as session:
        job = roster_import.get_job(session, actor=_actor(request, user), job_id=job_id)
        context = _job_context(job)
    return render(request, "console/_import_progress.html", context)


@router.get("/roster/imports/{job_id}/errors", response_class=StreamingResponse)
def import_errors(request: Request, user: ConsoleStaff, job_id: Id) -> Response:
    with unit_of_work(read_only=True) as session:
        job = roster_import.get_job(session, actor=_actor(request, user), job_id=job_id)
        path = job.error_report_path
    if path is None:
        return RedirectResponse(f"/console/roster/imports/{job_id}", status_code=303)
    return download_response(
        path, filename=f"roster-import-{job_id}-errors.csv", content_type="text/csv; charset=utf-8"
    )


def _reviews_page(
    request: Request, user: PageUser, *, done: str | None = None, error: str | None = None
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        pending = [review.view(r) for r in review.list_requests(session, actor=actor, limit=50)]
        names = {o.id: o.name for o in orgs.list_orgs(session, actor=actor)}
    context = {
        "active": "nav.reviews",
        "csrf_token": user.csrf_token,
        "pending": pending,
        "org_names": names,
        "done": done,
        "error": error,
    }
    return render(request, "console/reviews.html", context)


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, user: ConsoleStaff) -> Response:
    return _reviews_page(request, user)


@router.get("/reviews/{request_id}/proof")
def review_proof(request: Request, user: ConsoleStaff, request_id: Id) -> Response:
    """The proof image; viewing it is audited, so this read commits."""
    with unit_of_work() as session:
        image, content_type = review.open_proof(
            session, actor=_actor(request, user), request_id=request_id
        )
    return Response(
        image,
        media_type=content_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


@router.post("/reviews/{request_id}", response_class=HTMLResponse)
def decide_review(
    request: Request,
    user: ConsoleStaff,
    request_id: Id,
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
            return _reviews_page(request, user, error="reviews.reject_needs_note")
    try:
        with unit_of_work() as session:
            if decision == "approve":
                review.approve(session, actor=actor, request_id=request_id, note=note or None)
            else:
                review.reject(session, actor=actor, request_id=request_id, note=note.strip())
    except DomainError as exc:
        return _reviews_page(request, user, error=error_key(exc))
    return _reviews_page(request, user, done=f"reviews.done_{decision}")

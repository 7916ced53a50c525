"""The competition's forms on its H5 page: registering with the form's answers, and
adding a file to the entry. A refused registration comes back on the page with the
member's answers and the field at fault; everything else redirects (post, redirect, get)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from gonghui import bodylimit
from gonghui.activities.competition import certificates, registration
from gonghui.activities.competition.errors import CompetitionError
from gonghui.bodylimit import max_body, upload_limit
from gonghui.db import unit_of_work
from gonghui.errors import DomainError, InvalidInput, field_error
from gonghui.h5.access import H5Member, member_of
from gonghui.h5.competition import answer_types
from gonghui.h5.hub import render_activity
from gonghui.types import Id
from gonghui.web.errors import error_key, field_errors
from gonghui.web.i18n import translator
from gonghui.web.session import check_csrf
from gonghui.web.templating import request_locale

router = APIRouter()

_PREFIX = "answer_"


def _answers(posted: FormData, types: dict[str, str]) -> dict[str, Any]:
    """The posted answers typed as the form's fields are; a value that does not parse is
    passed on as written, for the table's own rules to refuse with the field named."""
    answers: dict[str, Any] = {}
    for name, kind in types.items():
        raw = str(posted.get(_PREFIX + name, "")).strip()
        if kind == "boolean":
            answers[name] = raw == "on"
        elif not raw:
            continue
        elif kind == "integer":
            answers[name] = int(raw) if raw.lstrip("-").isdigit() and len(raw) < 19 else raw
        elif kind == "number":
            try:
                answers[name] = float(raw)
            except ValueError:
                answers[name] = raw
        else:
            answers[name] = raw
    return answers


@router.post("/activities/{activity_id}/competition/registration")
async def register(request: Request, user: H5Member, activity_id: Id) -> Response:
    posted = await request.form(max_files=0, max_fields=120)
    check_csrf(request, user, str(posted.get("csrf", "")))
    member = member_of(user)

    def attempt() -> Response:
        context = answer_types(member, activity_id)
        answers = _answers(posted, context)
        # A team registers short of its members, who join with its invite code.
        team_name = str(posted.get("team_name", "")).strip()[:100] or None
        try:
            with unit_of_work() as session:
                registration.register(
                    session,
                    member=member,
                    activity_id=activity_id,
                    answers=answers,
                    team_name=team_name,
                    invite=team_name is not None,
                )
        except DomainError as exc:
            t = translator(request_locale(request))
            errors = {k.removeprefix("answers."): v for k, v in field_errors(exc, t).items()}
            values = {k: str(posted.get(_PREFIX + k, "")) for k in context}
            values["team_name"] = team_name or ""
            return render_activity(
                request,
                user,
                activity_id,
                status=422 if isinstance(exc, InvalidInput) else 409,
                error=error_key(exc),
                answer_errors=errors,
                answer_values=values,
            )
        return RedirectResponse(f"/h5/activities/{activity_id}?done=registered", status_code=303)

    return await run_in_threadpool(attempt)


@router.post("/activities/{activity_id}/competition/join")
async def join_team(request: Request, user: H5Member, activity_id: Id) -> Response:
    """Join a team with the invite code a teammate passed on."""
    posted = await request.form(max_files=0, max_fields=4)
    check_csrf(request, user, str(posted.get("csrf", "")))
    code = str(posted.get("invite_code", ""))[:16]
    target = f"/h5/activities/{activity_id}"

    def attempt() -> Response:
        try:
            with unit_of_work() as session:
                registration.join_team(
                    session, member=member_of(user), activity_id=activity_id, invite_code=code
                )
        except DomainError as exc:
            return RedirectResponse(f"{target}?error={error_key(exc)}", status_code=303)
        return RedirectResponse(f"{target}?done=joined", status_code=303)

    return await run_in_threadpool(attempt)


@router.post("/activities/{activity_id}/competition/files")
@max_body(upload_limit)
async def add_file(request: Request, user: H5Member, activity_id: Id) -> Response:
    """One file for the member's entry (multipart ``file``), within the form app's limit."""
    member = member_of(user)
    target = f"/h5/activities/{activity_id}"

    def limit() -> int:
        with unit_of_work(read_only=True) as session:
            return registration.upload_limit(session, member=member, activity_id=activity_id)

    bodylimit.lower(request.scope, await run_in_threadpool(limit) + bodylimit.MULTIPART_FRAMING)
    async with request.form(max_files=1, max_fields=2) as posted:
        check_csrf(request, user, str(posted.get("csrf", "")))
        upload = posted.get("file")

        def store() -> Response:
            try:
                if not isinstance(upload, UploadFile) or not upload.filename:
                    raise InvalidInput(
                        CompetitionError.BAD_FILES,
                        "choose a file",
                        [field_error("file", CompetitionError.BAD_FILES, "missing")],
                    )
                with unit_of_work() as session:
                    registration.add_file(
                        session,
                        member=member,
                        activity_id=activity_id,
                        stream=upload.file,
                        name=upload.filename,
                        claimed_type=upload.content_type,
                    )
            except DomainError as exc:
                return RedirectResponse(f"{target}?error={error_key(exc)}", status_code=303)
            return RedirectResponse(f"{target}?done=uploaded", status_code=303)

        return await run_in_threadpool(store)


@router.get("/activities/{activity_id}/certificate.pdf")
def certificate(user: H5Member, activity_id: Id) -> Response:
    """The member's certificate once the results are published (their entry ranked)."""
    with unit_of_work(read_only=True) as session:
        found = certificates.member_certificate(
            session, member=member_of(user), activity_id=activity_id
        )
    return certificates.download(found)

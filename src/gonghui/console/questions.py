"""Console page for the quiz question bank: XLSX import and the org's questions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from gonghui.activities.quiz import bank
from gonghui.bodylimit import max_body, upload_limit
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/questions", include_in_schema=False)


def _page(request: Request, user: PageUser, org_id: Id | None, **extra: Any) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        managed = [
            o
            for o in orgs.list_orgs(session, actor=actor)
            if actor.can(Permission.ACTIVITIES_MANAGE, o.path)
        ]
        chosen = org_id if org_id is not None else (managed[0].id if managed else None)
        questions = (
            bank.list_questions(session, actor=actor, org_id=chosen) if chosen is not None else []
        )
    context: dict[str, Any] = {
        "active": "nav.questions",
        "csrf_token": user.csrf_token,
        "orgs": managed,
        "chosen": chosen,
        "questions": questions,
    }
    context.update(extra)
    return render(request, "console/questions.html", context)


@router.get("", response_class=HTMLResponse)
def questions_page(request: Request, user: ConsoleStaff, org_id: Id | None = None) -> Response:
    return _page(request, user, org_id)


@router.post("", response_class=HTMLResponse)
@max_body(upload_limit)
def import_questions(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        questions = bank.parse_xlsx(file.file)  # before the write transaction: no lock held
        with unit_of_work() as session:
            created = bank.add_questions(
                session, actor=_actor(request, user), org_id=org_id, questions=questions
            )
    except DomainError as exc:
        rows = exc.details if isinstance(exc.details, list) else []
        return _page(request, user, org_id, error=error_key(exc), rows=rows)
    return _page(request, user, org_id, imported=created)

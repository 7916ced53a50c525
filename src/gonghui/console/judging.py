"""Console pages for judges (laid out for a tablet): their panels, and a panel's entries
by code only, each with its files, a score for every criterion of the rubric and a way to
step aside from it. The same services as the API's (``competition/panels/.../judging``):
a judge sees no name, no union and no form answer, and never scores an entry of their own
union."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from gonghui.activities.competition import judging
from gonghui.activities.competition.errors import CompetitionError
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput, field_error
from gonghui.types import Id
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/judging", include_in_schema=False)

_DONE = {"scored", "stepped_aside"}


@router.get("", response_class=HTMLResponse)
def tasks_page(request: Request, user: ConsoleStaff) -> Response:
    with unit_of_work(read_only=True) as session:
        tasks = judging.my_panels(session, judge=_actor(request, user))
    context = {"tasks": tasks, "active": "nav.judging"}
    return render(request, "console/judging.html", context)


@router.get("/panels/{panel_id}", response_class=HTMLResponse)
def panel_page(
    request: Request, user: ConsoleStaff, panel_id: Id, done: str = "", error: str = ""
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        panel, competition, rubric = judging.rubric(session, judge=actor, panel_id=panel_id)
        entries = judging.judge_view(session, judge=actor, panel_id=panel_id)
        closed = panel.closed_at is not None
    context = {
        "panel_id": panel_id,
        "panel_name": panel.name,
        "competition": competition,
        "rubric": rubric,
        "entries": entries,
        "closed": closed,
        "done": done if done in _DONE else None,
        "error": error if error.startswith("error.") else None,
        "csrf_token": user.csrf_token,
        "active": "nav.judging",
    }
    return render(request, "console/judging_panel.html", context)


@router.post("/panels/{panel_id}/entries/{code}/scores")
async def score(request: Request, user: ConsoleStaff, panel_id: Id, code: str) -> Response:
    """The judge's scores of one entry: a ``score_<criterion>`` field for each criterion."""
    form = await request.form()
    check_csrf(request, user, str(form.get("csrf", "")))
    given = {
        str(name)[len("score_") :]: str(value).strip()
        for name, value in form.items()
        if str(name).startswith("score_")
    }

    def save() -> None:
        problems = [
            field_error(f"scores.{key}", CompetitionError.BAD_SCORES, "a whole number")
            for key, value in given.items()
            if not value.isdigit() or len(value) > 6
        ]
        if problems:
            raise InvalidInput(CompetitionError.BAD_SCORES, "scores are whole numbers", problems)
        with unit_of_work() as session:
            judging.score_entry(
                session,
                judge=_actor(request, user),
                panel_id=panel_id,
                code=code[:32],
                scores={key: int(value) for key, value in given.items()},
            )

    target = f"/console/judging/panels/{panel_id}"
    return await run_in_threadpool(back_to, target, save, done="scored")


@router.post("/panels/{panel_id}/entries/{code}/conflict")
def step_aside(
    request: Request,
    user: ConsoleStaff,
    panel_id: Id,
    code: str,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The judge declares a conflict of interest: the entry leaves their list."""
    check_csrf(request, user, csrf)

    def declare() -> None:
        with unit_of_work() as session:
            judging.declare_conflict(
                session, judge=_actor(request, user), panel_id=panel_id, code=code[:32]
            )

    return back_to(f"/console/judging/panels/{panel_id}", declare, done="stepped_aside")

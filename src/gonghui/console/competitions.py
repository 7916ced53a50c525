"""Console page of a competition for its organiser: the entries (by code and union), the
judging panels (create, name judges by their sign-in name, hand them entries, close),
the ranking as the scores stand, and publishing it once every panel has closed. The same
services as the API's (``activities/competition/router.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from gonghui.accounts import service as accounts
from gonghui.activities.competition import certificates, judging, public_vote, results
from gonghui.activities.competition.errors import CompetitionError
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput, field_error
from gonghui.orgs.models import Org
from gonghui.types import Id
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/activities", include_in_schema=False)

_DONE = {
    "panel_created",
    "judge_added",
    "entries_assigned",
    "panel_closed",
    "published",
    "public_vote",
}


@router.get("/{activity_id}/competition", response_class=HTMLResponse)
def competition_page(
    request: Request, user: ConsoleStaff, activity_id: Id, done: str = "", error: str = ""
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity = judging.managed_competition(session, actor=actor, activity_id=activity_id)
        entries = sorted(
            judging.list_entries(session, actor=actor, activity_id=activity_id),
            key=lambda e: e.code,
        )
        unions = dict(
            session.execute(
                select(Org.id, Org.name).where(Org.id.in_({e.org_id for e in entries}))
            ).all()
        )
        panels = judging.panels(session, actor=actor, activity_id=activity_id)
        ranking = results.preview(session, actor=actor, activity_id=activity_id)
        published = judging.is_published(session, activity.id)
        public_vote_id = results.public_vote_of(session, activity.id)
        votes = (
            public_vote.votes_to_choose(session, actor=actor, activity_id=activity_id)
            if published and public_vote_id is None
            else []
        )
    codes = {e.id: e.code for e in entries}
    context = {
        "activity": activity,
        "entries": entries,
        "unions": unions,
        "panels": panels,
        "panel_names": {p.id: p.name for p in panels},
        "ranking": [(r, codes.get(r.entry_id, "")) for r in ranking],
        "published": published,
        "can_publish": not published and bool(panels) and all(p.closed for p in panels),
        "public_vote_id": public_vote_id,
        "votes": votes,
        "done": done if done in _DONE else None,
        "error": error if error.startswith("error.") else None,
        "csrf_token": user.csrf_token,
        "active": "nav.activities",
    }
    return render(request, "console/activity_competition.html", context)


def _page(activity_id: int) -> str:
    return f"/console/activities/{activity_id}/competition"


@router.post("/{activity_id}/competition/panels")
def create_panel(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def create() -> None:
        with unit_of_work() as session:
            judging.create_panel(
                session, actor=_actor(request, user), activity_id=activity_id, name=name.strip()
            )

    return back_to(_page(activity_id), create, done="panel_created")


@router.post("/{activity_id}/competition/panels/{panel_id}/judges")
def add_judge(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    panel_id: Id,
    username: Annotated[str, Form(min_length=1, max_length=150)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Name a judge by the name they sign in to the console with."""
    check_csrf(request, user, csrf)

    def add() -> None:
        with unit_of_work() as session:
            found = accounts.find_user_by_username(session, username=username)
            if found is None:
                raise InvalidInput(
                    CompetitionError.BAD_JUDGE,
                    "no staff account signs in with that name",
                    [field_error("username", CompetitionError.BAD_JUDGE, "not a staff account")],
                )
            judging.add_judge(
                session, actor=_actor(request, user), panel_id=panel_id, user_id=found.id
            )

    return back_to(_page(activity_id), add, done="judge_added")


@router.post("/{activity_id}/competition/assignments")
def assign(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    panel_id: Annotated[Id, Form()],
    entry_ids: Annotated[list[Id], Form(max_length=2000)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Hand the entries ticked to the panel (moving any from another panel)."""
    check_csrf(request, user, csrf)

    def hand_over() -> None:
        with unit_of_work() as session:
            judging.assign_entries(
                session, actor=_actor(request, user), panel_id=panel_id, entry_ids=entry_ids
            )

    return back_to(_page(activity_id), hand_over, done="entries_assigned")


@router.post("/{activity_id}/competition/panels/{panel_id}/close")
def close_panel(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    panel_id: Id,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def close() -> None:
        with unit_of_work() as session:
            judging.close_panel(session, actor=_actor(request, user), panel_id=panel_id)

    return back_to(_page(activity_id), close, done="panel_closed")


@router.post("/{activity_id}/competition/results")
def publish(
    request: Request, user: ConsoleStaff, activity_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)

    def publish_it() -> None:
        with unit_of_work() as session:
            results.publish(session, actor=_actor(request, user), activity_id=activity_id)

    return back_to(_page(activity_id), publish_it, done="published")


@router.post("/{activity_id}/competition/public-vote")
def put_to_public_vote(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    vote_id: Annotated[Id, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def put() -> None:
        with unit_of_work() as session:
            public_vote.put_to_vote(
                session, actor=_actor(request, user), activity_id=activity_id, vote_id=vote_id
            )

    return back_to(_page(activity_id), put, done="public_vote")


@router.get("/{activity_id}/competition/entries/{entry_id}/certificate.pdf")
def certificate(request: Request, user: ConsoleStaff, activity_id: Id, entry_id: Id) -> Response:
    """A ranked entry's certificate, naming all its members."""
    with unit_of_work(read_only=True) as session:
        found = certificates.entry_certificate(
            session, actor=_actor(request, user), activity_id=activity_id, entry_id=entry_id
        )
    return certificates.download(found)

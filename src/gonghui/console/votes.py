"""Console pages of a praise vote for its organiser: the nominations waiting for review
(approve, or reject with a reason), the live ranking, and freezing the result once the
vote has ended. The same services as the API's (``activities/vote/router.py``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from gonghui.activities.models import ActivityStatus
from gonghui.activities.service import effective_status
from gonghui.activities.vote import candidates, media, results
from gonghui.activities.vote.models import CandidateStatus, VoteResult
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor
from gonghui.types import Id
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/activities", include_in_schema=False)

# What a redirect after a form may say on the page.
_DONE = {"approved", "rejected", "frozen"}


def _ranking(session: Session, actor: Actor, activity_id: int) -> dict[str, Any]:
    ranking = results.operator_ranking(session, actor=actor, activity_id=activity_id)
    return {"ranking": ranking, "total_votes": sum(s.votes for s in ranking.items)}


@router.get("/{activity_id}/vote", response_class=HTMLResponse)
def vote_page(
    request: Request, user: ConsoleStaff, activity_id: Id, done: str = "", error: str = ""
) -> Response:
    """The organiser's page of a vote: the review queue, the ranking, the result."""
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity, _ = candidates.managed_vote(session, actor=actor, activity_id=activity_id)
        waiting = candidates.queue(
            session, actor=actor, activity_id=activity_id, status=CandidateStatus.NOMINATED
        )
        signed = media.media(session, waiting)
        unions = {c.org_id: session.get(Org, c.org_id) for c in waiting}
        context = _ranking(session, actor, activity_id)
        found = session.get(VoteResult, activity_id)
        result = (
            {
                "frozen_at": found.frozen_at,
                "entries": found.entries,
                "voided": found.voided,
                "log_hash": found.log_hash,
            }
            if found is not None
            else None
        )
        status = effective_status(activity)
    context.update(
        activity=activity,
        waiting=[
            {"c": c, "media": signed[c.id], "union": getattr(unions[c.org_id], "name", "")}
            for c in waiting
        ],
        result=result,
        can_freeze=result is None and status in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED),
        done=done if done in _DONE else None,
        error=error if error.startswith("error.") else None,
        csrf_token=user.csrf_token,
        active="nav.activities",
    )
    return render(request, "console/activity_vote.html", context)


@router.get("/{activity_id}/vote/ranking", response_class=HTMLResponse)
def ranking_fragment(request: Request, user: ConsoleStaff, activity_id: Id) -> Response:
    """The ranking table HTMX refreshes while the page is open (read afresh)."""
    with unit_of_work(read_only=True) as session:
        context = _ranking(session, _actor(request, user), activity_id)
    return render(request, "console/_vote_ranking.html", context)


@router.post("/{activity_id}/vote/candidates/{candidate_id}/review")
def review(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    candidate_id: Id,
    decision: Annotated[Literal["approve", "reject"], Form()],
    reason: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def decide() -> None:
        with unit_of_work() as session:
            candidates.review(
                session,
                actor=_actor(request, user),
                activity_id=activity_id,
                candidate_id=candidate_id,
                approve=decision == "approve",
                reason=reason,
            )

    done = "approved" if decision == "approve" else "rejected"
    return back_to(f"/console/activities/{activity_id}/vote", decide, done=done)


@router.post("/{activity_id}/vote/results")
def freeze(
    request: Request, user: ConsoleStaff, activity_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Freeze and publish the result of the ended vote (once)."""
    check_csrf(request, user, csrf)

    def freeze_it() -> None:
        with unit_of_work() as session:
            results.freeze(session, actor=_actor(request, user), activity_id=activity_id)

    return back_to(f"/console/activities/{activity_id}/vote", freeze_it, done="frozen")


LOG_PAGE = 100


@router.get("/{activity_id}/vote/log", response_class=HTMLResponse)
def log_page(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    candidate: Id | None = None,
    before: Id | None = None,
    done: str = "",
    error: str = "",
) -> Response:
    """The vote log, newest first, one candidate's or all, with a void button for each
    vote still counted (until the result is frozen)."""
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        activity, _ = candidates.managed_vote(session, actor=actor, activity_id=activity_id)
        names = {
            c.id: c.name for c in candidates.queue(session, actor=actor, activity_id=activity_id)
        }
        votes = results.operator_log(
            session,
            actor=actor,
            activity_id=activity_id,
            newest_first=True,
            before=before,
            candidate_id=candidate,
            limit=LOG_PAGE,
        )
        is_frozen = candidates.frozen(session, activity_id)
    context = {
        "activity": activity,
        "names": names,
        "votes": votes,
        "candidate": candidate,
        "older": votes[-1].id if len(votes) == LOG_PAGE else None,
        "frozen": is_frozen,
        "done": done if done == "voided" else None,
        "error": error if error.startswith("error.") else None,
        "csrf_token": user.csrf_token,
        "active": "nav.activities",
    }
    return render(request, "console/activity_vote_log.html", context)


@router.post("/{activity_id}/vote/votes/{vote_id}/void")
def void(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    vote_id: Id,
    reason: Annotated[str, Form(min_length=1, max_length=200)],
    candidate: Annotated[Id | None, Form()] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Void one vote (audited; its candidate's count goes down by one)."""
    check_csrf(request, user, csrf)

    def void_it() -> None:
        with unit_of_work() as session:
            results.void(
                session,
                actor=_actor(request, user),
                activity_id=activity_id,
                vote_id=vote_id,
                reason=reason,
            )

    target = f"/console/activities/{activity_id}/vote/log"
    if candidate is not None:
        target += f"?candidate={candidate}"
    return back_to(target, void_it, done="voided")

"""A praise vote in the H5: its candidates on the activity's page (photo, union, votes
unless hidden, a vote button each), a candidate's own page (profile, photo, video), and
the vote button's tap."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui import risk
from gonghui.accounts.principal import MemberInfo
from gonghui.activities.models import ActivityStatus
from gonghui.activities.service import effective_status
from gonghui.activities.vote import candidates, cast, media, results
from gonghui.db import unit_of_work
from gonghui.errors import NotFound
from gonghui.h5.access import H5Member, member_of
from gonghui.h5.member_action import run_as_member
from gonghui.types import Id
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter()


@dataclass(frozen=True)
class Card:
    """A candidate as the member's page shows it (``votes`` None while hidden)."""

    id: int
    name: str
    org_name: str
    category: str
    votes: int | None
    profile: str
    media: media.Media


def _cards(member: MemberInfo, activity_id: int, candidate_id: int | None) -> dict[str, Any]:
    with unit_of_work(read_only=True) as session:
        activity = candidates.member_vote(session, member=member, activity_id=activity_id)
        ranking = results.member_ranking(session, activity=activity)
        if candidate_id is None:
            rows = candidates.approved(session, activity_id=activity.id)
        else:
            rows = [
                candidates.approved_one(session, activity_id=activity.id, candidate_id=candidate_id)
            ]
        signed = media.media(session, rows)
        left = cast.remaining(session, activity=activity, membership_id=member.membership_id)
        live = effective_status(activity) is ActivityStatus.LIVE
    by_id = {row.id: row for row in rows}
    # In the ranking's order: by votes, or by candidate while the counts are hidden.
    cards = [
        Card(
            id=s.candidate_id,
            name=s.name,
            org_name=s.org_name,
            category=s.category,
            votes=None if ranking.counts_hidden else s.votes,
            profile=by_id[s.candidate_id].profile,
            media=signed[s.candidate_id],
        )
        for s in ranking.items
        if s.candidate_id in by_id
    ]
    return {
        "cards": cards,
        "counts_hidden": ranking.counts_hidden,
        "left": left,
        "voting_open": live and not ranking.frozen,
        "vote_key": secrets.token_urlsafe(16),
    }


def page_context(member: MemberInfo, activity_id: int) -> dict[str, Any]:
    """The vote's candidates and the member's votes left, for the activity's page."""
    return _cards(member, activity_id, None)


@router.get("/activities/{activity_id}/candidates/{candidate_id}", response_class=HTMLResponse)
def candidate_page(request: Request, user: H5Member, activity_id: Id, candidate_id: Id) -> Response:
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "tab": "hub"}
    try:
        context.update(_cards(member_of(user), activity_id, candidate_id))
    except NotFound:
        return render(request, "h5/vote_candidate.html", context, status=404)
    context.update(activity_id=activity_id, card=context["cards"][0])
    return render(request, "h5/vote_candidate.html", context)


@router.post("/activities/{activity_id}/votes", response_class=HTMLResponse)
def vote(
    request: Request,
    user: H5Member,
    activity_id: Id,
    candidate_id: Annotated[Id, Form()],
    vote_key: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
    risk_challenge: Annotated[str, Form(max_length=128)] = "",
    risk_answer: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """One vote for the candidate, screened by risk control (which may ask for the
    challenge first); answers the result partial with the votes left."""
    check_csrf(request, user, csrf)
    return run_as_member(
        request,
        user,
        "h5/_vote_result.html",
        cast.cast,
        action=risk.Action.VOTE,
        activity_id=activity_id,
        resend={"candidate_id": str(candidate_id), "vote_key": vote_key, "csrf": csrf},
        challenge=(risk_challenge, risk_answer) if risk_challenge else None,
        shown=lambda result: {"result": result, "next_key": secrets.token_urlsafe(16)},
        target=cast.rate_target(activity_id, candidate_id),
        candidate_id=candidate_id,
        idempotency_key=vote_key or None,
    )

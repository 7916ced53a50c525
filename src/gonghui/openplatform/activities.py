"""The open API's activities of the client's org and the unions below it (never another
subtree's):

- ``activities:read``: the published ones, newest first, a page at a time (never drafts),
  and each one's participation and results, as the organiser's dashboard counts them and
  as members see a vote's ranking (counts hidden until the end if the vote hides them);
- ``activities:write`` (staff-approved, :mod:`.approvals`): a draft created, published,
  paused and resumed through the activities' own services, with the rights of the staff
  member who approved it, narrowed to the client's subtree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.activities import service, stats
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.quiz import attempts as quiz_attempts
from gonghui.activities.schemas import ActivityCreate
from gonghui.activities.service import status_at
from gonghui.activities.vote import results as vote_results
from gonghui.clock import now
from gonghui.errors import NotFound
from gonghui.openplatform import approvals
from gonghui.openplatform.approvals import ClientOrg
from gonghui.openplatform.models import Client
from gonghui.orgs.models import Org
from gonghui.tenancy import SYSTEM, within

PAGE_MAX = 100


@dataclass(frozen=True)
class OpenActivity:
    id: int
    kind: str
    title: str
    org_code: str
    org_name: str
    status: str
    starts_at: datetime
    ends_at: datetime


def published(
    session: Session, *, client_pk: int, before: int | None = None, limit: int = 20
) -> list[OpenActivity]:
    """The client's subtree's activities that members can see or have seen."""
    client_org = session.execute(
        select(Org.path).join(Client, Client.org_id == Org.id).where(Client.id == client_pk)
    ).scalar_one()
    stmt = (
        select(Activity, Org.code, Org.name)
        .join(Org, Org.id == Activity.org_id)
        .where(
            within(Org.path, client_org),
            Activity.status.not_in([ActivityStatus.DRAFT, ActivityStatus.ARCHIVED]),
        )
        .order_by(Activity.id.desc())
        .limit(min(max(limit, 1), PAGE_MAX))
    )
    if before is not None:
        stmt = stmt.where(Activity.id < before)
    at = now()
    return [
        OpenActivity(
            a.id,
            str(a.kind),
            a.title,
            code,
            name,
            str(status_at(a.status, a.starts_at, a.ends_at, at)),
            a.starts_at,
            a.ends_at,
        )
        for a, code, name in session.execute(stmt)
    ]


def _open(activity: Activity, org: Org) -> OpenActivity:
    return OpenActivity(
        activity.id,
        str(activity.kind),
        activity.title,
        org.code,
        org.name,
        str(status_at(activity.status, activity.starts_at, activity.ends_at, now())),
        activity.starts_at,
        activity.ends_at,
    )


def _in_subtree(
    session: Session, client: ClientOrg, activity_id: int, *, drafts: bool
) -> tuple[Activity, Org]:
    """The activity, if it belongs to the client's subtree (and, unless ``drafts``, has
    been published); else not found, as for one that does not exist."""
    row = session.execute(
        select(Activity, Org).join(Org, Org.id == Activity.org_id).where(Activity.id == activity_id)
    ).first()
    if (
        row is None
        or not client.holds(row[1].path)
        or (not drafts and row[0].status == ActivityStatus.DRAFT)
    ):
        raise NotFound("activity.not_found", f"activity {activity_id} not found")
    return row[0], row[1]


WRITE = "activities:write"


def create(session: Session, *, client_pk: int, data: ActivityCreate) -> OpenActivity:
    """A draft activity in an org of the client's subtree (the staff API's rules)."""
    acting = approvals.acting_for(session, client_pk=client_pk, scope=WRITE)
    org = session.get(Org, data.org_id)
    if org is None or not acting.client.holds(org.path):
        raise NotFound("org.not_found", f"org {data.org_id} not found")
    activity = service.create_activity(
        session,
        actor=acting.actor,
        data=data,
        origin={"via": "open_api", "client_id": acting.client.client_id},
    )
    return _open(activity, org)


Transition = Literal["publish", "pause", "resume"]
_TRANSITIONS = {"publish": service.publish, "pause": service.pause, "resume": service.resume}


def transition(
    session: Session, *, client_pk: int, activity_id: int, to: Transition
) -> OpenActivity:
    """Publish a draft, pause a live activity or resume a paused one, as staff would."""
    acting = approvals.acting_for(session, client_pk=client_pk, scope=WRITE)
    activity, org = _in_subtree(session, acting.client, activity_id, drafts=True)
    changed = _TRANSITIONS[to](session, actor=acting.actor, activity_id=activity.id)
    return _open(changed, org)


_LOTTERY = (ActivityKind.LOTTERY, ActivityKind.QUIZ_LOTTERY)
_QUIZ = (ActivityKind.QUIZ, ActivityKind.QUIZ_LOTTERY)


@dataclass(frozen=True)
class Participation:
    """How many took part, in the measures the activity's kind has (None: not of it)."""

    activity_id: int
    kind: str
    status: str
    draws: int | None
    members_drawing: int | None
    quiz_attempts: int | None
    quiz_passed: int | None
    votes: int | None


@dataclass(frozen=True)
class Results:
    """Prizes won per prize (a lottery), the ranking (a vote: counts None while hidden),
    how many submitted attempts scored each score (a quiz)."""

    activity_id: int
    kind: str
    status: str
    prizes: list[dict[str, Any]]
    ranking: list[dict[str, Any]]
    counts_hidden: bool
    scores: list[dict[str, int]]


def _read(session: Session, client_pk: int, activity_id: int) -> tuple[Activity, dict[str, Any]]:
    """The activity (published, in the client's subtree) and the organiser's counts of it.
    Tenancy is this subtree check; the dashboard's counts are then read as the system."""
    activity, _ = _in_subtree(
        session, approvals.client_org(session, client_pk), activity_id, drafts=False
    )
    return activity, stats.activity_stats(session, actor=SYSTEM, activity_id=activity.id)


def _ranking(session: Session, activity: Activity) -> vote_results.Ranking | None:
    if activity.kind != ActivityKind.VOTE:
        return None
    return vote_results.member_ranking(session, activity=activity)


def participation(session: Session, *, client_pk: int, activity_id: int) -> Participation:
    activity, counts = _read(session, client_pk, activity_id)
    ranking = _ranking(session, activity)
    return Participation(
        activity.id,
        str(activity.kind),
        counts["status"],
        counts["draws"] if activity.kind in _LOTTERY else None,
        counts["members_drawing"] if activity.kind in _LOTTERY else None,
        counts["quiz_attempts"] if activity.kind in _QUIZ else None,
        counts["quiz_passed"] if activity.kind in _QUIZ else None,
        None if ranking is None or ranking.counts_hidden else sum(s.votes for s in ranking.items),
    )


def results(session: Session, *, client_pk: int, activity_id: int) -> Results:
    activity, counts = _read(session, client_pk, activity_id)
    ranking = _ranking(session, activity)
    prizes = [
        {"position": p["position"], "name": p["name"], "kind": p["kind"],
         "initial_stock": p["initial_stock"], "won": p["won"]}
        for p in counts["prizes"]
    ]  # fmt: skip
    hidden = ranking is not None and ranking.counts_hidden
    return Results(
        activity.id,
        str(activity.kind),
        counts["status"],
        prizes,
        []
        if ranking is None
        else [
            {
                "candidate_id": s.candidate_id,
                "name": s.name,
                "org_name": s.org_name,
                "category": s.category,
                "votes": None if hidden else s.votes,
            }
            for s in ranking.items
        ],
        hidden,
        [
            {"score": score, "attempts": n}
            for score, n in quiz_attempts.score_distribution(session, activity_id=activity.id)
        ]
        if activity.kind in _QUIZ
        else [],
    )

"""Published results (结果公示) on the member's hub: the competitions whose ranking is
published and the praise votes whose result is frozen, of the member's union and every
union above it, newest first, each with its first lines.

The hub lists what is live or coming; an activity's page closes with its window. Results
outlive both, so they have their own list and page: a member finds last month's
competition ranking and model-worker vote here. They are public (anyone may read them at
``/api/v1/public/...``); the chain only chooses what concerns the member. A line names
what the full results name: a team by its name, individuals by their names, a candidate by
theirs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, tuple_, union_all
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities.competition.models import Entry, Result
from gonghui.activities.competition.registration import KINDS as COMPETITION_KINDS
from gonghui.activities.competition.results import (
    PublicResults,
    entrant_names,
    entry_name,
    public_results,
    shared_ranks,
)
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.hub import MAX_PAGE, Cursor
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.participation import chain_ids, visible_activity
from gonghui.activities.schemas import PublishedItem, PublishedLine, PublishedPage
from gonghui.activities.vote import results as vote_results
from gonghui.activities.vote.models import VoteResult
from gonghui.errors import NotFound
from gonghui.orgs.models import Org

TOP = 3  # lines shown per result in the list


def member_results(
    session: Session, *, member: MemberInfo, cursor: str | None = None, limit: int = 20
) -> PublishedPage:
    """The published results of the member's chain after ``cursor``, newest first."""
    limit = min(max(limit, 1), MAX_PAGE)
    chain = chain_ids(member.org_path)
    # Each branch reads only the chain's activities (by their org), then is ordered as one.
    in_chain = Activity.org_id.in_(chain)
    published = union_all(
        select(Result.activity_id.label("id"), func.min(Result.published_at).label("at"))
        .join(Activity, Activity.id == Result.activity_id)
        .where(in_chain)
        .group_by(Result.activity_id),
        select(VoteResult.activity_id, VoteResult.frozen_at)
        .join(Activity, Activity.id == VoteResult.activity_id)
        .where(in_chain),
    ).subquery()
    query = (
        select(published.c.id, published.c.at, Activity, Org.name)
        .join(Activity, Activity.id == published.c.id)
        .join(Org, Org.id == Activity.org_id)
        .where(
            Activity.status != ActivityStatus.DRAFT,
            Org.archived_at.is_(None),
        )
        .order_by(published.c.at.desc(), published.c.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        after = Cursor.decode(cursor)
        query = query.where(tuple_(published.c.at, published.c.id) < (after.at, after.id))
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    votes = [a.id for _id, _at, a, _name in rows if a.kind == ActivityKind.VOTE]
    tops = {
        **_competition_tops(session, [a.id for _id, _at, a, _name in rows if a.id not in votes]),
        **_vote_tops(session, votes),
    }
    items = [
        PublishedItem(
            id=activity.id,
            org_id=activity.org_id,
            org_name=org_name,
            kind=activity.kind,
            title=activity.title,
            published_at=at,
            top=tops.get(activity.id, []),
        )
        for _id, at, activity, org_name in rows
    ]
    next_cursor = Cursor(rows[-1].at, rows[-1].id).encode() if more else None
    return PublishedPage(items=items, next_cursor=next_cursor)


def _competition_tops(session: Session, activity_ids: list[int]) -> dict[int, list[PublishedLine]]:
    """The first ``TOP`` lines of each competition's published ranking."""
    tops: dict[int, list[PublishedLine]] = defaultdict(list)
    if not activity_ids:
        return tops
    lines = session.execute(
        select(Result.activity_id, Result.rank, Result.score_micros, Entry.id, Entry.team_name)
        .join(Entry, Entry.id == Result.entry_id)
        .where(Result.activity_id.in_(activity_ids), Result.rank <= TOP)
        .order_by(Result.activity_id, Result.rank, Entry.code)
    ).all()
    names = entrant_names(session, [line.id for line in lines if not line.team_name])
    for line in lines:
        if len(tops[line.activity_id]) < TOP:
            tops[line.activity_id].append(
                PublishedLine(
                    rank=line.rank,
                    name=entry_name(line.team_name, names[line.id]),
                    score=line.score_micros / 1_000_000,
                    votes=None,
                )
            )
    return tops


def _vote_tops(session: Session, activity_ids: list[int]) -> dict[int, list[PublishedLine]]:
    """The first ``TOP`` lines of each frozen vote."""
    tops: dict[int, list[PublishedLine]] = {}
    if not activity_ids:
        return tops
    found = session.execute(
        select(VoteResult.activity_id, VoteResult.totals).where(
            VoteResult.activity_id.in_(activity_ids)
        )
    )
    for activity_id, totals in found:
        tops[activity_id] = vote_lines(totals[:TOP])
    return tops


def vote_lines(totals: list[dict[str, Any]]) -> list[PublishedLine]:
    """A frozen vote's totals (frozen in ranking order, most votes first) as ranked lines;
    equal votes share a rank (1, 1, 3)."""
    votes = [int(total["votes"]) for total in totals]
    return [
        PublishedLine(rank=rank, name=total["name"], score=None, votes=count)
        for total, count, rank in zip(totals, votes, shared_ranks(votes), strict=True)
    ]


@dataclass(frozen=True)
class Shown:
    """One published result in full, as the member's results page shows it."""

    activity: Activity
    org_name: str
    competition: PublicResults | None = None  # a competition's ranking
    vote: VoteResult | None = None  # a vote's frozen result
    vote_lines: list[PublishedLine] = field(default_factory=list)  # its totals, ranked


def member_result(session: Session, *, member: MemberInfo, activity_id: int) -> Shown:
    """An activity of the member's chain whose results are published; 404 otherwise, and
    for an archived union's, as the list leaves them out."""
    activity = visible_activity(session, member=member, activity_id=activity_id)
    org = session.get(Org, activity.org_id)
    if org is not None and org.archived_at is None:
        if activity.kind == ActivityKind.VOTE:
            vote = vote_results.published(session, activity_id=activity.id)
            return Shown(activity, org.name, vote=vote, vote_lines=vote_lines(vote.totals))
        if activity.kind in COMPETITION_KINDS:
            ranking = public_results(session, activity_id=activity.id)
            if ranking.published:
                return Shown(activity, org.name, competition=ranking)
    raise NotFound(ActivitiesError.NOT_FOUND, f"no published results for activity {activity_id}")

"""Results: the judges' scores normalised per judge, ranked, frozen on publication, and
the public view of them.

The formula. For judge j and criterion c, over the entries E_j that j scored (in their
current panel; a judge on two panels is one judge):

    mu_jc    = mean of s_jec over e in E_j
    sigma_jc = population standard deviation of s_jec over e in E_j
    z_jec    = (s_jec - mu_jc) / sigma_jc        (0 when sigma_jc is 0: the judge did
                                                  not tell these entries apart on c)
    n_je     = sum_c w_c * z_jec / sum_c w_c      (the rubric's weights)
    score_e  = mean of n_je over the judges j who scored e

so a harsh judge and a lenient one count alike, and a criterion weighs by the rubric, not
by its max score. Entries are ranked by score, highest first (rounded to millionths, which
is what is frozen); equal scores share a rank (1, 1, 3). Unscored entries are not ranked.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.activities.competition.errors import CompetitionError
from gonghui.activities.competition.judging import is_published, managed_competition
from gonghui.activities.competition.models import Entry, EntryMember, Panel, Result, Score
from gonghui.activities.competition.registration import KINDS, rules_of
from gonghui.activities.models import Activity, ActivityStatus
from gonghui.activities.vote.models import Candidate, VoteResult
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, NotFound
from gonghui.members.models import Membership, RosterEntry
from gonghui.orgs.models import Org
from gonghui.pii import PiiField, unseal
from gonghui.tenancy import Actor

Scores = dict[str, int]


def normalise(
    judged: dict[tuple[int, int], Scores], weights: dict[str, int]
) -> dict[int, tuple[float, int]]:
    """``judged``: (judge, entry) → criterion → points. Each entry's score by the module's
    formula, and how many judges scored it."""
    by_judge: dict[int, dict[int, Scores]] = defaultdict(dict)
    for (judge, entry), scores in judged.items():
        by_judge[judge][entry] = scores
    total_weight = sum(weights.values())
    per_entry: dict[int, list[float]] = defaultdict(list)
    for entries in by_judge.values():
        z: dict[int, float] = dict.fromkeys(entries, 0.0)
        for c, w in weights.items():
            values = [s[c] for s in entries.values()]
            mu = sum(values) / len(values)
            sigma = math.sqrt(sum((v - mu) ** 2 for v in values) / len(values))
            if sigma == 0:
                continue
            for e, s in entries.items():
                z[e] += w * (s[c] - mu) / sigma
        for e, total in z.items():
            per_entry[e].append(total / total_weight)
    return {e: (sum(ns) / len(ns), len(ns)) for e, ns in per_entry.items()}


@dataclass(frozen=True)
class Ranked:
    entry_id: int
    rank: int
    score_micros: int
    judges: int


def shared_ranks(values: Sequence[int]) -> list[int]:
    """The ranks of values in ranking order: equal values share the first one's (1, 2, 2, 4)."""
    ranks: list[int] = []
    for position, value in enumerate(values, start=1):
        tied = position > 1 and values[position - 2] == value
        ranks.append(ranks[-1] if tied else position)
    return ranks


def rank(scored: dict[int, tuple[float, int]], codes: dict[int, str]) -> list[Ranked]:
    micros = {e: round(s * 1_000_000) for e, (s, _) in scored.items()}
    order = sorted(micros, key=lambda e: (-micros[e], codes[e]))
    ranks = shared_ranks([micros[e] for e in order])
    return [Ranked(e, r, micros[e], scored[e][1]) for e, r in zip(order, ranks, strict=True)]


def entry_name(team_name: str | None, names: Sequence[str]) -> str:
    """An entry in one line, as rankings and votes name it: its team, else its entrants."""
    return team_name or "、".join(names)


def compute(session: Session, activity: Activity) -> list[Ranked]:
    rows = session.execute(
        select(Score.judge_user_id, Score.entry_id, Score.scores)
        .join(Entry, Entry.id == Score.entry_id)
        .where(Entry.activity_id == activity.id, Score.panel_id == Entry.panel_id)
    )
    judged = {(j, e): {k: int(v) for k, v in s.items()} for j, e, s in rows}
    weights = {c.key: c.weight for c in rules_of(activity).rubric}
    codes = {
        row.id: row.code
        for row in session.execute(
            select(Entry.id, Entry.code).where(Entry.activity_id == activity.id)
        )
    }
    return rank(normalise(judged, weights), codes)


def preview(session: Session, *, actor: Actor, activity_id: int) -> list[Ranked]:
    """The ranking as the scores stand (operators only; nothing frozen)."""
    return compute(session, managed_competition(session, actor=actor, activity_id=activity_id))


def publish(session: Session, *, actor: Actor, activity_id: int) -> list[Result]:
    """Freeze the ranking: every panel must be closed; publishing twice is refused."""
    activity = managed_competition(session, actor=actor, activity_id=activity_id)
    if is_published(session, activity.id):
        raise Conflict(CompetitionError.RESULTS_PUBLISHED, "the results are already published")
    open_panels = session.scalar(
        select(Panel.id).where(Panel.activity_id == activity.id, Panel.closed_at.is_(None))
    )
    if open_panels is not None:
        raise Conflict(CompetitionError.PANELS_OPEN, f"panel {open_panels} is still open")
    ranked = compute(session, activity)
    if not ranked:
        raise Conflict(CompetitionError.RESULTS_NOT_PUBLISHED, "no entry has been scored")
    instant = now()
    rows = [
        Result(
            activity_id=activity.id,
            entry_id=r.entry_id,
            rank=r.rank,
            score_micros=r.score_micros,
            judges=r.judges,
            published_at=instant,
        )
        for r in ranked
    ]
    session.add_all(rows)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="competition.results.publish",
        org_id=activity.org_id,
        subject_type="activity",
        subject_id=activity.id,
        details={"entries": len(rows), "first": ranked[0].entry_id},
    )
    return rows


def is_ranked(session: Session, *, entry_id: int) -> bool:
    """Whether the entry has a line in the published results (and so a certificate)."""
    return session.scalar(select(Result.id).where(Result.entry_id == entry_id)) is not None


@dataclass(frozen=True)
class PublicLine:
    rank: int
    score: float
    code: str
    team_name: str | None
    names: list[str]
    org_name: str
    # Its votes in the competition's public vote, once that vote's result is frozen.
    public_votes: int | None = None


@dataclass(frozen=True)
class PublicResults:
    published: bool
    lines: list[PublicLine]
    # The praise vote the ranked entries were put to (see public_vote.py), if any.
    public_vote_id: int | None = None


def entrant_names(session: Session, entry_ids: Collection[int]) -> dict[int, list[str]]:
    """Each entry's members' names (captain first), as the published results show them."""
    names: dict[int, list[str]] = defaultdict(list)
    for entry_id, blob in session.execute(
        select(EntryMember.entry_id, RosterEntry.name_enc)
        .join(Membership, Membership.id == EntryMember.membership_id)
        .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
        .where(EntryMember.entry_id.in_(entry_ids))
        .order_by(EntryMember.id)
    ):
        names[entry_id].append(unseal(PiiField.NAME, blob))
    return names


def public_results(session: Session, *, activity_id: int) -> PublicResults:
    """Anyone's view: nothing but "not yet" before publication; afterwards the frozen
    ranking with the entrants' names and union."""
    activity = session.get(Activity, activity_id)
    if activity is None or activity.kind not in KINDS or activity.status == ActivityStatus.DRAFT:
        raise NotFound("activity.not_found", f"activity {activity_id} not found")
    rows = session.execute(
        select(Result, Entry, Org.name)
        .join(Entry, Entry.id == Result.entry_id)
        .join(Org, Org.id == Entry.org_id)
        .where(Result.activity_id == activity.id)
        .order_by(Result.rank, Entry.code)
    ).all()
    if not rows:
        return PublicResults(published=False, lines=[])
    names = entrant_names(session, [entry.id for _result, entry, _org in rows])
    vote_id, votes = _frozen_votes(session, activity.id)
    return PublicResults(
        published=True,
        public_vote_id=vote_id,
        lines=[
            PublicLine(
                rank=result.rank,
                score=result.score_micros / 1_000_000,
                code=entry.code,
                team_name=entry.team_name,
                names=names[entry.id],
                org_name=org_name,
                public_votes=votes.get(entry.id),
            )
            for result, entry, org_name in rows
        ],
    )


def public_vote_of(session: Session, competition_id: int) -> int | None:
    """The praise vote this competition's entries were put to (see public_vote.py), if any."""
    found: int | None = session.scalar(
        select(Candidate.activity_id)
        .join(Entry, Entry.id == Candidate.entry_id)
        .where(Entry.activity_id == competition_id)
        .limit(1)
    )
    return found


def _frozen_votes(session: Session, competition_id: int) -> tuple[int | None, dict[int, int]]:
    """The competition's public vote and, once its result is frozen, the votes of each
    entry as published (entry id -> votes; empty before the freeze)."""
    vote_id = public_vote_of(session, competition_id)
    if vote_id is None:
        return None, {}
    result = session.get(VoteResult, vote_id)
    if result is None:
        return vote_id, {}
    published = {int(t["candidate_id"]): int(t["votes"]) for t in result.totals}
    standing = session.execute(
        select(Candidate.id, Candidate.entry_id).where(
            Candidate.activity_id == vote_id, Candidate.entry_id.is_not(None)
        )
    )
    return vote_id, {
        entry_id: published.get(candidate_id, 0)
        for candidate_id, entry_id in standing
        if entry_id is not None
    }

"""The vote's dry run: before publishing, its limits as a member will meet them, worked out
from the rules, the window and the candidates approved so far, with what does not add up.

Nothing is simulated: a member's votes follow from the rules alone (see :mod:`.cast`).
A day is a local day (Asia/Shanghai) that the window touches, as the counters count them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gonghui.activities.vote.candidates import managed_vote, rules_of
from gonghui.activities.vote.models import Candidate, CandidateStatus
from gonghui.clock import local_day
from gonghui.tenancy import Actor


class PreviewWarning(StrEnum):
    NO_CANDIDATES = "no_candidates"
    # Fewer approved candidates than a member's votes of a day allow them to spend.
    DAY_UNSPENDABLE = "votes_per_day_unspendable"
    # The window's days at the daily limit never reach the total.
    TOTAL_UNREACHABLE = "votes_total_unreachable"
    # Nominations not reviewed yet: members will not see them.
    NOMINATIONS_PENDING = "nominations_pending"


@dataclass(frozen=True)
class Preview:
    days: int
    votes_per_day: int
    votes_per_candidate_per_day: int
    votes_total: int | None
    counts_hidden_until_end: bool
    categories: list[str]
    candidates: int
    pending_nominations: int
    # What a member can cast on the first day, and at most over the whole window.
    first_day_votes: int
    most_votes_per_member: int
    most_votes_for_one_candidate: int
    warnings: list[PreviewWarning] = field(default_factory=list)


def preview(session: Session, *, actor: Actor, activity_id: int) -> Preview:
    """The preview of a vote the actor organises (draft or live)."""
    activity, _ = managed_vote(session, actor=actor, activity_id=activity_id)
    rules = rules_of(activity)
    per_day = int(rules.get("votes_per_day") or 1)
    per_candidate = int(rules.get("votes_per_candidate_per_day") or 1)
    total = rules.get("votes_total")
    rows = session.execute(
        select(Candidate.status, func.count())
        .where(Candidate.activity_id == activity.id)
        .group_by(Candidate.status)
    )
    counted: dict[str, int] = dict(rows.all())
    approved = counted.get(CandidateStatus.APPROVED, 0)
    pending = counted.get(CandidateStatus.NOMINATED, 0)
    first = local_day(activity.starts_at)
    last = local_day(activity.ends_at - timedelta(microseconds=1))
    days = max((last - first).days + 1, 1)
    a_day = min(per_day, per_candidate * approved)
    cap = total if total is not None else a_day * days
    warnings: list[PreviewWarning] = []
    if approved == 0:
        warnings.append(PreviewWarning.NO_CANDIDATES)
    elif per_candidate * approved < per_day:
        warnings.append(PreviewWarning.DAY_UNSPENDABLE)
    if total is not None and per_day * days < total:
        warnings.append(PreviewWarning.TOTAL_UNREACHABLE)
    if pending:
        warnings.append(PreviewWarning.NOMINATIONS_PENDING)
    return Preview(
        days=days,
        votes_per_day=per_day,
        votes_per_candidate_per_day=per_candidate,
        votes_total=total,
        counts_hidden_until_end=bool(rules.get("hide_counts_until_end")),
        categories=list(rules.get("categories") or []),
        candidates=approved,
        pending_nominations=pending,
        first_day_votes=min(a_day, cap),
        most_votes_per_member=min(a_day * days, cap),
        most_votes_for_one_candidate=min(per_candidate * days, cap) if approved else 0,
        warnings=warnings,
    )

"""Members cast votes: a hot write of the writer, many members at a time.

A vote counts against three per-member counters (:mod:`gonghui.activities.counters`, one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE used < granted`` for the whole batch each):
the member's votes today (``vote:day:<day>``), for that candidate today
(``vote:c:<candidate>:<day>``, one statement for every candidate of the batch:
:func:`counters.claim_each`) and, when the vote caps it, in all (``vote:total``). A vote
refused by one gives back what the others took, so no member passes a limit under any
concurrency and a refusal leaves nothing written. Each vote is a row of the log
(:class:`~gonghui.activities.vote.models.Vote`); the candidates' counts (``votes``) are
raised once per batch and candidate, in candidate order, at the end of the batch.

The result's freeze and the votes exclude each other: a batch reads the activity's row
``FOR SHARE`` (PostgreSQL; SQLite has one writer) before it checks that no result is
frozen, and the freeze takes that row ``FOR UPDATE``, so a vote is either in the frozen
log or refused (``vote.frozen``), never counted after it. The window is checked inside the
batch as well: no vote is accepted after the end.

Risk control screens a vote at the HTTP edge (``risk.check_async``, action ``vote``)
before it is handed to the writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from gonghui import hotwrite, idempotency
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.models import Activity, ActivityKind, Counter
from gonghui.activities.participation import live_round
from gonghui.activities.vote.errors import VoteError
from gonghui.activities.vote.models import Candidate, CandidateStatus, Vote, VoteResult
from gonghui.clock import local_day, now
from gonghui.errors import Conflict, DomainError, NotFound

OPERATION = "vote.cast"
TOTAL = "vote:total"

Outcome = dict[str, Any] | DomainError


def day_scope(day: str) -> str:
    return f"vote:day:{day}"


def candidate_scope(candidate_id: int, day: str) -> str:
    return f"vote:c:{candidate_id}:{day}"


@dataclass(frozen=True)
class _Call:
    index: int
    member: MemberInfo
    activity_id: int
    candidate_id: int
    key: str | None

    @property
    def member_id(self) -> int:
        return self.member.membership_id


@cache
def _votable() -> Select[int]:
    return select(Candidate.id).where(
        Candidate.activity_id == bindparam("a"), Candidate.status == CandidateStatus.APPROVED
    )


@cache
def _hold_open() -> Select[int]:
    # Shared with every other batch of votes, exclusive with the freeze (see the module).
    return select(Activity.id).where(Activity.id == bindparam("a")).with_for_update(read=True)


_INSERT_VOTES = insert(Vote).returning(Vote.id, sort_by_parameter_order=True)
_RAISE = (
    update(Candidate)
    .where(Candidate.id == bindparam("c"))
    .values(votes=Candidate.votes + bindparam("k"))
)


@dataclass
class _Batch:
    """What a batch reads once per activity, and the counts it raises at its end."""

    open: dict[int, bool]
    votable: dict[int, set[int]]
    raised: dict[int, int]

    def check_open(self, session: Session, activity_id: int) -> bool:
        if activity_id not in self.open:
            session.connection().execute(_hold_open(), {"a": activity_id})
            self.open[activity_id] = session.get(VoteResult, activity_id) is None
        return self.open[activity_id]

    def candidates(self, session: Session, activity_id: int) -> set[int]:
        if activity_id not in self.votable:
            rows = session.connection().execute(_votable(), {"a": activity_id})
            self.votable[activity_id] = set(rows.scalars())
        return self.votable[activity_id]


def cast_many(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    """Cast each call's vote (keyword arguments of :func:`cast`); each call's answer, or
    the DomainError that refuses it, in the same order."""
    outcomes: list[Outcome | None] = [None] * len(calls)
    pending = [
        _Call(
            index=i,
            member=call["member"],
            activity_id=call["activity_id"],
            candidate_id=call["candidate_id"],
            key=call["idempotency_key"],
        )
        for i, call in enumerate(calls)
    ]
    batch = _Batch(open={}, votable={}, raised={})
    for round_ in hotwrite.rounds(pending, lambda call: call.member_id):
        by_activity: dict[int, list[_Call]] = {}
        for call in round_:
            by_activity.setdefault(call.activity_id, []).append(call)
        for activity_id, group in sorted(by_activity.items()):
            _cast_round(session, activity_id, group, outcomes, batch)
    if batch.raised:
        # In candidate order: every batch locks the candidates' rows in one order.
        raised = [{"c": c, "k": k} for c, k in sorted(batch.raised.items())]
        session.connection().execute(_RAISE, raised)
    return [outcome for outcome in outcomes if outcome is not None]


def rate_target(activity_id: int, candidate_id: int) -> str:
    """What risk control counts a vote under: its candidate (whose jumps it flags)."""
    return f"vote:{activity_id}:candidate:{candidate_id}"


@hotwrite.batched(cast_many)
def cast(
    session: Session,
    *,
    member: MemberInfo,
    activity_id: int,
    candidate_id: int,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Hot operation: one vote for ``candidate_id``; a retry with the same key gets the
    same answer."""
    result: dict[str, Any] = hotwrite.one(
        cast_many,
        session,
        member=member,
        activity_id=activity_id,
        candidate_id=candidate_id,
        idempotency_key=idempotency_key,
    )
    return result


def _cast_round(
    session: Session,
    activity_id: int,
    calls: list[_Call],
    outcomes: list[Outcome | None],
    batch: _Batch,
) -> None:
    """One round of one activity's votes (each member once); fills in ``outcomes``."""

    def work(fresh: list[_Call]) -> None:
        activity, going = live_round(
            session, fresh, outcomes, activity_id=activity_id, kinds={ActivityKind.VOTE}
        )
        if activity is None:
            return
        if not batch.check_open(session, activity_id):
            for call in going:
                outcomes[call.index] = Conflict(VoteError.FROZEN, "the result is frozen")
            return
        votable = batch.candidates(session, activity_id)
        for call in going:
            if call.candidate_id not in votable:
                outcomes[call.index] = NotFound(
                    VoteError.CANDIDATE_NOT_FOUND, f"candidate {call.candidate_id} not found"
                )
        going = [c for c in going if outcomes[c.index] is None]
        _count_and_log(session, activity, going, outcomes, batch)

    idempotency.keyed_round(
        session, calls, outcomes, operation=lambda c: f"{OPERATION}:{activity_id}", work=work
    )


def _count_and_log(
    session: Session,
    activity: Activity,
    calls: list[_Call],
    outcomes: list[Outcome | None],
    batch: _Batch,
) -> None:
    """Take each vote's units of the member's limits (all or none), log the votes that
    got them, and answer each call."""
    if not calls:
        return
    rules = activity.config.get("vote") or {}
    day = local_day().isoformat()
    aid = activity.id
    members = [c.member_id for c in calls]
    today = counters.claim_many(
        session,
        activity_id=aid,
        members=members,
        scope=day_scope(day),
        granted=int(rules.get("votes_per_day") or 1),
    )
    refused: dict[int, DomainError] = {
        c.member_id: Conflict(VoteError.LIMIT_DAY, "no more votes today; come back tomorrow")
        for c in calls
        if c.member_id not in today
    }
    per_candidate = int(rules.get("votes_per_candidate_per_day") or 1)
    wanted = {
        c.member_id: candidate_scope(c.candidate_id, day)
        for c in calls
        if c.member_id not in refused
    }
    got = counters.claim_each(session, activity_id=aid, scopes=wanted, granted=per_candidate)
    over = [m for m in wanted if m not in got]
    counters.release_many(session, activity_id=aid, members=over, scope=day_scope(day))
    for member_id in over:
        refused[member_id] = Conflict(
            VoteError.LIMIT_CANDIDATE,
            "you have voted for this candidate as often as you may today",
        )
    total = rules.get("votes_total")
    if total is not None:
        left = [c for c in calls if c.member_id not in refused]
        got = counters.claim_many(
            session,
            activity_id=aid,
            members=[c.member_id for c in left],
            scope=TOTAL,
            granted=int(total),
        )
        over_calls = [c for c in left if c.member_id not in got]
        counters.release_many(
            session,
            activity_id=aid,
            members=[c.member_id for c in over_calls],
            scope=day_scope(day),
        )
        by_cand: dict[int, list[int]] = {}
        for c in over_calls:
            by_cand.setdefault(c.candidate_id, []).append(c.member_id)
            refused[c.member_id] = Conflict(VoteError.LIMIT_TOTAL, "you have cast all your votes")
        for candidate_id, group_members in sorted(by_cand.items()):
            counters.release_many(
                session,
                activity_id=aid,
                members=group_members,
                scope=candidate_scope(candidate_id, day),
            )
    for c in calls:
        if c.member_id in refused:
            outcomes[c.index] = refused[c.member_id]
    cast_calls = [c for c in calls if c.member_id not in refused]
    if not cast_calls:
        return
    instant = now()
    rows = [
        {
            "activity_id": aid,
            "candidate_id": c.candidate_id,
            "membership_id": c.member_id,
            "day": day,
            "at": instant,
        }
        for c in cast_calls
    ]
    ids = list(session.connection().execute(_INSERT_VOTES, rows).scalars())
    for c in cast_calls:
        batch.raised[c.candidate_id] = batch.raised.get(c.candidate_id, 0) + 1
    left_now = remaining_many(
        session, activity=activity, members=[c.member_id for c in cast_calls], day=day
    )
    for c, vote_id in zip(cast_calls, ids, strict=True):
        mine = left_now[c.member_id]
        outcomes[c.index] = {
            "vote_id": vote_id,
            "activity_id": aid,
            "candidate_id": c.candidate_id,
            "at": instant.isoformat(),
            "votes_left_today": mine["today"],
            "votes_left_total": mine["total"],
        }


def remaining_many(
    session: Session, *, activity: Activity, members: list[int], day: str | None = None
) -> dict[int, dict[str, int | None]]:
    """Votes each member has left today and in all (None: no cap in all)."""
    rules = activity.config.get("vote") or {}
    day = day or local_day().isoformat()
    total = rules.get("votes_total")
    scopes = {day_scope(day): int(rules.get("votes_per_day") or 1)}
    if total is not None:
        scopes[TOTAL] = int(total)
    left = counters.remaining_many(session, activity_id=activity.id, members=members, scopes=scopes)
    answer: dict[int, dict[str, int | None]] = {}
    for member in members:
        today = left[member][day_scope(day)]
        in_all = left[member].get(TOTAL) if total is not None else None
        answer[member] = {
            "today": today if in_all is None else min(today, in_all),
            "total": in_all,
        }
    return answer


def remaining(session: Session, *, activity: Activity, membership_id: int) -> dict[str, Any]:
    """A member's votes left: today, in all, and for each candidate today."""
    day = local_day().isoformat()
    mine = remaining_many(session, activity=activity, members=[membership_id], day=day)[
        membership_id
    ]
    rules = activity.config.get("vote") or {}
    per_candidate = int(rules.get("votes_per_candidate_per_day") or 1)
    used: dict[int, int] = {}
    for scope, n in session.execute(
        select(Counter.scope, Counter.used).where(
            Counter.activity_id == activity.id,
            Counter.membership_id == membership_id,
            Counter.scope.like(f"vote:c:%:{day}"),
        )
    ):
        used[int(scope.split(":")[2])] = int(n)
    return {
        "day": day,
        "votes_left_today": mine["today"],
        "votes_left_total": mine["total"],
        "per_candidate_per_day": per_candidate,
        "used_by_candidate_today": used,
    }

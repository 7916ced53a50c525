"""A praise vote's ranking while it runs, voiding votes, and the frozen, published result.

**Ranking.** The candidates' counts (``Candidate.votes``, raised by each batch of votes in
its own transaction) sorted; each server process keeps a ranking for
:data:`RANKING_TTL_S` (one read of the candidates a second per vote and process, however
many members watch it): a vote shows in the ranking within that, plus the writer's
commit. A void or the freeze drops it at once through the change feed (topic
``vote.ranking``).
``bench/vote.py`` measures the staleness under load. Members see no counts while the vote
hides them (``hide_counts_until_end``) and it has not ended; operators always do.

**Void.** An operator voids a vote (audited, with a reason) before the result is frozen:
the log row is marked and its candidate's count goes down by one in the same
transaction, so the ranking and the totals recomputed from the log agree. The member's
vote is not given back: a voided vote is typically a brushed one, and giving it back would
let the same script vote again. After the freeze a void is refused: the published totals
and hash must never change (a vote found bad then is a matter for a new vote, not an edit
of a published result).

**Freeze and publish.** Once the vote has ended, an operator freezes it: the log is read
in order, the totals are counted from it (and must equal the candidates' counts), and
the result is written once with the log's hash. The hash is a chain over the ordered log
(as the lottery's proof publishes its ordered draw log): ``h0 = SHA-256("gonghui-vote-v1:"
+ activity id)``, ``h_n = SHA-256(h_{n-1} + "\\n" + line_n)`` with ``line_n =
"<n>|<voter>|<candidate id>|<day>|ok"`` (``void`` for a voided vote), where the voter is
the member's pseudonym in this activity (:func:`fairness.pseudonym`, so the log cannot be
joined back to membership ids but each member's votes per day can be counted against the
published limits). Anyone downloads the log (:func:`log_lines`), recomputes the chain and
the totals, and compares them with the published result (:func:`verify`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.activities.lottery import fairness
from gonghui.activities.models import Activity, ActivityStatus
from gonghui.activities.service import effective_status
from gonghui.activities.vote.candidates import managed_vote, rules_of, vote_activity
from gonghui.activities.vote.errors import VoteError
from gonghui.activities.vote.models import Candidate, CandidateStatus, Vote, VoteResult
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import Conflict, NotFound
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor

RANKING_TTL_S = 1.0
_CHUNK = 5000
_GENESIS = "gonghui-vote-v1:"


@dataclass(frozen=True)
class Standing:
    candidate_id: int
    name: str
    org_id: int
    org_name: str
    category: str
    status: str
    votes: int


@dataclass(frozen=True)
class Ranking:
    activity_id: int
    at: datetime
    frozen: bool
    counts_hidden: bool
    items: list[Standing]


# activity id -> (monotonic time read, standings, frozen); per process (see the module).
_rankings: dict[int, tuple[float, list[Standing], bool, datetime]] = {}
_rankings_lock = threading.Lock()
_RANKINGS_MAX = 1000


RANKING_TOPIC = "vote.ranking"


def forget_rankings() -> None:
    with _rankings_lock:
        _rankings.clear()


def _changed(change: invalidation.Change) -> None:
    with _rankings_lock:
        if change.key is None:
            _rankings.clear()
        else:
            _rankings.pop(int(change.key), None)


# A void or a freeze drops the activity's ranking in every process (within a second);
# votes age out with RANKING_TTL_S (a change a vote would be thousands a second).
invalidation.subscribe(RANKING_TOPIC, on_change=_changed, forget=forget_rankings)


def _read_standings(session: Session, activity_id: int) -> tuple[list[Standing], bool]:
    result = session.get(VoteResult, activity_id)
    rows = session.execute(
        select(Candidate, Org.name)
        .join(Org, Org.id == Candidate.org_id)
        .where(Candidate.activity_id == activity_id, Candidate.status != CandidateStatus.NOMINATED)
    ).all()
    frozen_votes = {t["candidate_id"]: t["votes"] for t in result.totals} if result else {}
    standings = [
        Standing(
            candidate_id=c.id,
            name=c.name,
            org_id=c.org_id,
            org_name=org_name,
            category=c.category,
            status=str(c.status),
            votes=int(frozen_votes.get(c.id, 0) if result else c.votes),
        )
        for c, org_name in rows
        if c.status == CandidateStatus.APPROVED or c.votes or c.id in frozen_votes
    ]
    standings.sort(key=lambda s: (-s.votes, s.candidate_id))
    return standings, result is not None


def _standings(session: Session, activity_id: int) -> tuple[list[Standing], bool, datetime]:
    moment = time.monotonic()
    with _rankings_lock:
        kept = _rankings.get(activity_id)
    if kept is not None and moment - kept[0] < RANKING_TTL_S:
        return kept[1], kept[2], kept[3]
    standings, is_frozen = _read_standings(session, activity_id)
    at = now()
    with _rankings_lock:
        if len(_rankings) >= _RANKINGS_MAX:
            _rankings.clear()
        _rankings[activity_id] = (moment, standings, is_frozen, at)
    return standings, is_frozen, at


def member_ranking(session: Session, *, activity: Activity) -> Ranking:
    """The ranking a member sees: without counts (ordered by candidate) while hidden."""
    standings, is_frozen, at = _standings(session, activity.id)
    ended = effective_status(activity) in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED)
    hidden = bool(rules_of(activity).get("hide_counts_until_end")) and not ended
    items = [s for s in standings if s.status == CandidateStatus.APPROVED or is_frozen]
    if hidden:
        items = sorted(
            (Standing(**{**s.__dict__, "votes": 0}) for s in items),
            key=lambda s: s.candidate_id,
        )
    return Ranking(activity.id, at, is_frozen, hidden, items)


def operator_ranking(session: Session, *, actor: Actor, activity_id: int) -> Ranking:
    """The ranking with counts, as the organiser watches it (read afresh)."""
    activity, _ = managed_vote(session, actor=actor, activity_id=activity_id)
    standings, is_frozen = _read_standings(session, activity.id)
    return Ranking(activity.id, now(), is_frozen, False, standings)


def _lock_activity(session: Session, activity_id: int) -> None:
    """Exclusive with every batch of votes of the activity (see :mod:`.cast`)."""
    session.execute(select(Activity.id).where(Activity.id == activity_id).with_for_update())


def void(session: Session, *, actor: Actor, activity_id: int, vote_id: int, reason: str) -> Vote:
    """Void one vote before the freeze (see the module); audited."""
    activity, _ = managed_vote(session, actor=actor, activity_id=activity_id)
    _lock_activity(session, activity.id)
    if session.get(VoteResult, activity.id) is not None:
        raise Conflict(
            VoteError.FROZEN, "the result is frozen and published: no vote is voided now"
        )
    vote = session.get(Vote, vote_id)
    if vote is None or vote.activity_id != activity.id:
        raise NotFound(VoteError.VOTE_NOT_FOUND, f"vote {vote_id} not found")
    instant = now()
    marked = session.execute(
        update(Vote)
        .where(Vote.id == vote.id, Vote.voided_at.is_(None))
        .values(voided_at=instant, voided_by=actor.user_id, void_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if rowcount(marked) != 1:
        raise Conflict(VoteError.ALREADY_VOID, f"vote {vote_id} is already void")
    session.execute(
        update(Candidate)
        .where(Candidate.id == vote.candidate_id)
        .values(votes=Candidate.votes - 1)
        .execution_options(synchronize_session=False)
    )
    invalidation.changed(session, RANKING_TOPIC, str(activity.id))
    audit.record(
        session,
        actor=actor,
        action="vote.void",
        org_id=activity.org_id,
        subject_type="vote",
        subject_id=vote.id,
        reason=reason,
        details={"activity_id": activity.id, "candidate_id": vote.candidate_id},
    )
    session.expire(vote)
    return vote


def operator_log(
    session: Session,
    *,
    actor: Actor,
    activity_id: int,
    after: int = 0,
    newest_first: bool = False,
    before: int | None = None,
    candidate_id: int | None = None,
    limit: int = 500,
) -> list[Vote]:
    """The log as the organiser reviews it (membership ids, to void brushed votes): in
    order after ``after``, or newest first (before ``before``: a candidate's latest votes
    when its rate jumped); one candidate's votes only when given."""
    activity, _ = managed_vote(session, actor=actor, activity_id=activity_id)
    stmt = select(Vote).where(Vote.activity_id == activity.id)
    if candidate_id is not None:
        stmt = stmt.where(Vote.candidate_id == candidate_id)
    if newest_first:
        if before is not None:
            stmt = stmt.where(Vote.id < before)
        stmt = stmt.order_by(Vote.id.desc())
    else:
        stmt = stmt.where(Vote.id > after).order_by(Vote.id)
    return list(session.scalars(stmt.limit(min(max(limit, 1), 2000))))


def _line(n: int, voter: str, candidate_id: int, day: str, voided: bool) -> str:
    return f"{n}|{voter}|{candidate_id}|{day}|{'void' if voided else 'ok'}"


def chain_start(activity_id: int) -> str:
    return hashlib.sha256(f"{_GENESIS}{activity_id}".encode()).hexdigest()


def chain_next(previous: str, line: str) -> str:
    return hashlib.sha256(f"{previous}\n{line}".encode()).hexdigest()


def _entries(session: Session, activity_id: int) -> Iterator[dict[str, Any]]:
    """The ordered log as published: position, voter pseudonym, candidate, day, valid."""
    n = 0
    after = 0
    while True:
        rows = session.execute(
            select(Vote.id, Vote.membership_id, Vote.candidate_id, Vote.day, Vote.voided_at)
            .where(Vote.activity_id == activity_id, Vote.id > after)
            .order_by(Vote.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        for vote_id, member, candidate_id, day, voided_at in rows:
            n += 1
            after = vote_id
            yield {
                "n": n,
                "voter": fairness.pseudonym(activity_id=activity_id, membership_id=member),
                "candidate_id": candidate_id,
                "day": day,
                "valid": voided_at is None,
            }


def freeze(session: Session, *, actor: Actor, activity_id: int) -> VoteResult:
    """Freeze and publish the result of an ended vote (once; see the module); audited."""
    activity, _ = managed_vote(session, actor=actor, activity_id=activity_id)
    _lock_activity(session, activity.id)
    found = session.get(VoteResult, activity.id)
    if found is not None:
        return found
    if effective_status(activity) not in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED):
        raise Conflict(VoteError.NOT_ENDED, "a vote's result is frozen once it has ended")
    digest = chain_start(activity.id)
    valid: Counter[int] = Counter()
    entries = voided = 0
    for e in _entries(session, activity.id):
        entries += 1
        digest = chain_next(
            digest, _line(e["n"], e["voter"], e["candidate_id"], e["day"], not e["valid"])
        )
        if e["valid"]:
            valid[e["candidate_id"]] += 1
        else:
            voided += 1
    candidates = session.scalars(
        select(Candidate).where(Candidate.activity_id == activity.id).order_by(Candidate.id)
    ).all()
    counted = {c.id: c.votes for c in candidates if c.votes or c.id in valid}
    if counted != dict(valid):
        # Never expected: the counts are raised and lowered with the log rows.
        raise Conflict(
            VoteError.COUNTS_MISMATCH,
            "the candidates' counts differ from the log; nothing was published",
            {"counts": counted, "log": dict(valid)},
        )
    ranked = sorted(
        (c for c in candidates if c.status == CandidateStatus.APPROVED or valid.get(c.id)),
        key=lambda c: (-valid.get(c.id, 0), c.id),
    )
    totals = [
        {"candidate_id": c.id, "name": c.name, "org_id": c.org_id, "votes": valid.get(c.id, 0)}
        for c in ranked
    ]
    result = VoteResult(
        activity_id=activity.id,
        frozen_by=actor.user_id,
        entries=entries,
        voided=voided,
        totals=totals,
        log_hash=digest,
    )
    session.add(result)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="vote.freeze",
        org_id=activity.org_id,
        subject_type="activity",
        subject_id=activity.id,
        details={"entries": entries, "voided": voided, "log_hash": digest},
    )
    invalidation.changed(session, RANKING_TOPIC, str(activity.id))
    return result


def published(session: Session, *, activity_id: int) -> VoteResult:
    """The frozen result, for anyone; 404 until it is published."""
    activity, _ = vote_activity(session, activity_id)
    result = session.get(VoteResult, activity.id)
    if result is None or activity.status == "draft":
        raise NotFound(VoteError.NOT_PUBLISHED, "the result is not published yet")
    return result


def result_view(result: VoteResult) -> dict[str, Any]:
    return {
        "activity_id": result.activity_id,
        "frozen_at": result.frozen_at.isoformat(),
        "entries": result.entries,
        "voided": result.voided,
        "totals": result.totals,
        "log_hash": result.log_hash,
        "hash": "sha256 chain: h0 = sha256('gonghui-vote-v1:<activity id>'); "
        "h_n = sha256(h_{n-1} + '\\n' + '<n>|<voter>|<candidate_id>|<day>|ok|void')",
    }


def log_lines(session: Session, *, activity_id: int) -> Iterator[bytes]:
    """The published log as JSON lines: the result first, then one line per entry."""
    result = published(session, activity_id=activity_id)
    yield (json.dumps(result_view(result), ensure_ascii=False) + "\n").encode()
    for e in _entries(session, result.activity_id):
        yield (json.dumps(e) + "\n").encode()


def verify(result: dict[str, Any], entries: list[dict[str, Any]]) -> list[str]:
    """Recompute the hash and the totals from a downloaded log; each mismatch one line."""
    problems: list[str] = []
    digest = chain_start(int(result["activity_id"]))
    valid: Counter[int] = Counter()
    for i, e in enumerate(entries, 1):
        if e["n"] != i:
            problems.append(f"entry {i} is numbered {e['n']}")
        line = _line(e["n"], e["voter"], e["candidate_id"], e["day"], not e["valid"])
        digest = chain_next(digest, line)
        if e["valid"]:
            valid[int(e["candidate_id"])] += 1
    if digest != result["log_hash"]:
        problems.append("the log's hash differs from the published one")
    if len(entries) != result["entries"]:
        problems.append(f"{len(entries)} entries, {result['entries']} published")
    for t in result["totals"]:
        counted = valid.get(int(t["candidate_id"]), 0)
        if counted != t["votes"]:
            problems.append(
                f"candidate {t['candidate_id']}: {counted} in the log, {t['votes']} published"
            )
    return problems

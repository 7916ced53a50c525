"""A competition's optional public vote (人气投票), run by the praise vote.

Judging is blind, and a public vote shows entrants by name, so entries go to the vote once
the judged results are published (and so public): the organiser puts the ranked entries to
a praise vote of the competition's own union, each as an approved candidate standing for
its entry (``Candidate.entry_id``, once per vote), named as the published results name it.
Members then vote as in any praise vote: its limits, risk control, live ranking, voiding,
freeze and published log. A competition has at most one public vote; once that vote is
frozen, the competition's public results show each entry's votes beside its rank.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.activities.competition.errors import CompetitionError
from gonghui.activities.competition.judging import managed_competition
from gonghui.activities.competition.models import Entry, Result
from gonghui.activities.competition.results import entrant_names, entry_name, public_vote_of
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.service import effective_status
from gonghui.activities.vote import candidates
from gonghui.activities.vote.models import Candidate, CandidateStatus, VoteResult
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, field_error
from gonghui.tenancy import Actor

NAME_CHARS = 100  # Candidate.name


def put_to_vote(session: Session, *, actor: Actor, activity_id: int, vote_id: int) -> int:
    """Every ranked entry of competition ``activity_id`` not yet in vote ``vote_id`` becomes
    an approved candidate there; how many were added (0 when all were)."""
    competition = managed_competition(session, actor=actor, activity_id=activity_id)
    vote, _org = candidates.managed_vote(session, actor=actor, activity_id=vote_id)
    if vote.org_id != competition.org_id:
        raise InvalidInput(
            CompetitionError.BAD_PUBLIC_VOTE,
            "the public vote is a praise vote of the competition's own union",
            [field_error("vote_id", CompetitionError.BAD_PUBLIC_VOTE, "not this union's vote")],
        )
    _lock(session, competition.id, vote.id)
    other = public_vote_of(session, competition.id)
    if other is not None and other != vote.id:
        raise Conflict(
            CompetitionError.BAD_PUBLIC_VOTE, f"the entries are already put to vote {other}"
        )
    candidates.open_for_changes(session, vote)
    ranked = session.execute(
        select(Result.rank, Entry)
        .join(Entry, Entry.id == Result.entry_id)
        .where(Result.activity_id == competition.id)
        .order_by(Result.rank, Entry.code)
    ).all()
    if not ranked:
        raise Conflict(
            CompetitionError.RESULTS_NOT_PUBLISHED,
            "entries go to a public vote once the judged results are published",
        )
    standing = set(
        session.scalars(select(Candidate.entry_id).where(Candidate.activity_id == vote.id))
    )
    names = entrant_names(session, [entry.id for _rank, entry in ranked])
    instant = now()
    added = [
        Candidate(
            activity_id=vote.id,
            org_id=entry.org_id,
            name=entry_name(entry.team_name, names[entry.id])[:NAME_CHARS],
            profile="",
            category="",
            entry_id=entry.id,
            status=CandidateStatus.APPROVED,
            nominated_by=actor.user_id,
            reviewed_by=actor.user_id,
            reviewed_at=instant,
        )
        for _rank, entry in ranked
        if entry.id not in standing
    ]
    if not added:
        return 0
    session.add_all(added)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="competition.public_vote",
        org_id=competition.org_id,
        subject_type="activity",
        subject_id=competition.id,
        details={"vote_id": vote.id, "candidates": [c.id for c in added]},
    )
    return len(added)


def _lock(session: Session, competition_id: int, vote_id: int) -> None:
    """Serialise the puts of one competition (one public vote each) and exclude the vote's
    batches of votes and its freeze (see :mod:`gonghui.activities.vote.cast`) while its
    candidates change; both rows in id order, so two puts never wait on each other."""
    session.execute(
        select(Activity.id)
        .where(Activity.id.in_((competition_id, vote_id)))
        .order_by(Activity.id)
        .with_for_update()
    )


def votes_to_choose(session: Session, *, actor: Actor, activity_id: int) -> list[Activity]:
    """The praise votes the competition's entries may go to: its union's, not ended nor
    frozen, newest first."""
    competition = managed_competition(session, actor=actor, activity_id=activity_id)
    found = session.scalars(
        select(Activity)
        .outerjoin(VoteResult, VoteResult.activity_id == Activity.id)
        .where(
            Activity.org_id == competition.org_id,
            Activity.kind == ActivityKind.VOTE,
            Activity.status.in_(
                [
                    ActivityStatus.DRAFT,
                    ActivityStatus.SCHEDULED,
                    ActivityStatus.LIVE,
                    ActivityStatus.PAUSED,
                ]
            ),
            VoteResult.activity_id.is_(None),
        )
        .order_by(Activity.id.desc())
        .limit(50)
    )
    return [a for a in found if effective_status(a) != ActivityStatus.ENDED]

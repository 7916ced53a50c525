"""Candidates of a praise vote: nominated by unions below the organiser, reviewed by the
organiser, and only then votable.

Who may do what (``activities.manage`` in every case):

- nominate: staff of the nominating org, which lies in the subtree of the vote's org (the
  organiser's own staff too), until the vote ends;
- edit or withdraw a nomination: the nominating org's staff while it waits for review,
  the organiser's at any time before the result is frozen (a candidate with votes is
  never deleted: reject it instead, which keeps the log whole);
- review (approve, or reject with a reason): the organiser's staff only.

Everything is audited. Photos and videos are files of the file store that the nominating
staff uploaded (:mod:`gonghui.activities.vote.media`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.participation import visible_activity
from gonghui.activities.service import effective_status
from gonghui.activities.vote import media
from gonghui.activities.vote.errors import VoteError
from gonghui.activities.vote.models import Candidate, CandidateStatus, Vote, VoteResult
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, NotFound, field_error
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, path_within, scoped

MANAGE = Permission.ACTIVITIES_MANAGE


@dataclass(frozen=True)
class CandidateFields:
    name: str | None = None
    profile: str | None = None
    category: str | None = None
    photo_file_id: int | None = None
    video_file_id: int | None = None


def rules_of(activity: Activity) -> dict[str, Any]:
    rules: dict[str, Any] = activity.config.get("vote") or {}
    return rules


def vote_activity(session: Session, activity_id: int) -> tuple[Activity, Org]:
    """The vote ``activity_id`` and its org, whoever asks (callers check their rights)."""
    activity = session.get(Activity, activity_id)
    if activity is None or activity.kind != ActivityKind.VOTE:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    org = session.get(Org, activity.org_id)
    assert org is not None
    return activity, org


def organises(actor: Actor, org: Org) -> bool:
    return actor.can(MANAGE, org.path)


def _reaches(actor: Actor, org: Org) -> bool:
    """Whether the actor manages the vote's org or an org below it (a nominating union)."""
    return organises(actor, org) or any(path_within(root, org.path) for root in actor.roots(MANAGE))


def managed_vote(session: Session, *, actor: Actor, activity_id: int) -> tuple[Activity, Org]:
    """A vote the actor organises; 404 otherwise."""
    activity, org = vote_activity(session, activity_id)
    if not organises(actor, org):
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return activity, org


def frozen(session: Session, activity_id: int) -> bool:
    return session.get(VoteResult, activity_id) is not None


def _audit(session: Session, actor: Actor, action: str, c: Candidate, **details: Any) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"vote.candidate.{action}",
        org_id=c.org_id,
        subject_type="vote_candidate",
        subject_id=c.id,
        details={"activity_id": c.activity_id, **details},
    )


def _check_category(activity: Activity, category: str) -> None:
    allowed = rules_of(activity).get("categories") or []
    if allowed and category not in allowed:
        raise InvalidInput(
            VoteError.BAD_CATEGORY,
            "the category is not one of the vote's",
            [field_error("category", VoteError.BAD_CATEGORY, f"one of {', '.join(allowed)}")],
        )


def _check_files(session: Session, actor: Actor, fields: CandidateFields) -> None:
    if fields.photo_file_id is not None:
        media.check_file(session, actor, "photo_file_id", fields.photo_file_id, "image/")
    if fields.video_file_id is not None:
        media.check_file(session, actor, "video_file_id", fields.video_file_id, "video/")


def open_for_changes(session: Session, activity: Activity) -> None:
    """Refuse a change of candidates once the vote has ended or its result is frozen."""
    status = effective_status(activity)
    if status in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED) or frozen(session, activity.id):
        raise Conflict(VoteError.BAD_STATE, f"the vote is {status}: candidates no longer change")


def nominate(
    session: Session, *, actor: Actor, activity_id: int, org_id: int, fields: CandidateFields
) -> Candidate:
    """A candidate put forward by ``org_id`` (in the vote's subtree, managed by the actor),
    waiting for the organiser's review."""
    activity, vote_org = vote_activity(session, activity_id)
    if not _reaches(actor, vote_org):
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    org = session.scalar(scoped(select(Org).where(Org.id == org_id), actor, MANAGE))
    if org is None or not path_within(org.path, vote_org.path):
        raise InvalidInput(
            VoteError.NOT_NOMINATING,
            "candidates are nominated by a union you manage within the organiser's",
            [field_error("org_id", VoteError.NOT_NOMINATING, "not a union you manage here")],
        )
    open_for_changes(session, activity)
    _check_category(activity, fields.category or "")
    _check_files(session, actor, fields)
    candidate = Candidate(
        activity_id=activity.id,
        org_id=org.id,
        name=fields.name or "",
        profile=fields.profile or "",
        category=fields.category or "",
        photo_file_id=fields.photo_file_id,
        video_file_id=fields.video_file_id,
        status=CandidateStatus.NOMINATED,
        nominated_by=actor.user_id,
    )
    session.add(candidate)
    session.flush()
    _audit(session, actor, "nominate", candidate, name=candidate.name)
    return candidate


def _managed_candidate(
    session: Session, actor: Actor, activity_id: int, candidate_id: int
) -> tuple[Activity, Candidate, bool]:
    """The candidate if the actor organises the vote or manages its nominating org (and
    whether they organise it); 404 otherwise."""
    activity, vote_org = vote_activity(session, activity_id)
    candidate = session.get(Candidate, candidate_id)
    if candidate is None or candidate.activity_id != activity.id:
        raise NotFound(VoteError.CANDIDATE_NOT_FOUND, f"candidate {candidate_id} not found")
    organiser = organises(actor, vote_org)
    nominating = session.get(Org, candidate.org_id)
    assert nominating is not None
    if not organiser and not actor.can(MANAGE, nominating.path):
        raise NotFound(VoteError.CANDIDATE_NOT_FOUND, f"candidate {candidate_id} not found")
    return activity, candidate, organiser


def update(
    session: Session,
    *,
    actor: Actor,
    activity_id: int,
    candidate_id: int,
    fields: CandidateFields,
    sent: set[str],
) -> Candidate:
    """Change the fields ``sent``: the organiser before the freeze, the nominating union
    while the nomination waits for review."""
    activity, candidate, organiser = _managed_candidate(session, actor, activity_id, candidate_id)
    open_for_changes(session, activity)
    if not organiser and candidate.status != CandidateStatus.NOMINATED:
        raise Conflict(VoteError.BAD_STATE, "a reviewed candidate is changed by the organiser")
    if "category" in sent:
        _check_category(activity, fields.category or "")
    _check_files(
        session,
        actor,
        CandidateFields(
            photo_file_id=fields.photo_file_id if "photo_file_id" in sent else None,
            video_file_id=fields.video_file_id if "video_file_id" in sent else None,
        ),
    )
    for name in sorted(sent):
        value = getattr(fields, name)
        if value is None and name in ("name", "profile", "category"):
            continue
        setattr(candidate, name, value)
    candidate.updated_at = now()
    _audit(session, actor, "update", candidate, fields=sorted(sent))
    return candidate


def withdraw(session: Session, *, actor: Actor, activity_id: int, candidate_id: int) -> None:
    """Delete a candidate no one voted for (the organiser; the nominating union while it
    waits for review)."""
    activity, candidate, organiser = _managed_candidate(session, actor, activity_id, candidate_id)
    open_for_changes(session, activity)
    if not organiser and candidate.status != CandidateStatus.NOMINATED:
        raise Conflict(VoteError.BAD_STATE, "a reviewed candidate is withdrawn by the organiser")
    if session.scalar(select(exists().where(Vote.candidate_id == candidate.id))):
        raise Conflict(VoteError.HAS_VOTES, "a candidate with votes is rejected, not deleted")
    _audit(session, actor, "withdraw", candidate, name=candidate.name)
    session.delete(candidate)


def review(
    session: Session,
    *,
    actor: Actor,
    activity_id: int,
    candidate_id: int,
    approve: bool,
    reason: str | None,
) -> Candidate:
    """The organiser approves (votable from now) or rejects (with a reason) a candidate.
    A rejected candidate's votes stay in the log and count for it in the result; members
    can no longer vote for it."""
    activity, candidate, organiser = _managed_candidate(session, actor, activity_id, candidate_id)
    if not organiser:
        raise NotFound(VoteError.CANDIDATE_NOT_FOUND, f"candidate {candidate_id} not found")
    open_for_changes(session, activity)
    if not approve and not (reason or "").strip():
        raise InvalidInput(
            VoteError.REASON_REQUIRED,
            "say why the candidate is rejected",
            [field_error("reason", VoteError.REASON_REQUIRED, "required to reject")],
        )
    candidate.status = CandidateStatus.APPROVED if approve else CandidateStatus.REJECTED
    candidate.review_reason = None if approve else (reason or "").strip()
    candidate.reviewed_by = actor.user_id
    candidate.reviewed_at = candidate.updated_at = now()
    _audit(
        session,
        actor,
        "approve" if approve else "reject",
        candidate,
        reason=candidate.review_reason,
    )
    return candidate


def queue(
    session: Session, *, actor: Actor, activity_id: int, status: CandidateStatus | None = None
) -> list[Candidate]:
    """The vote's candidates as the actor may see them: all of them for the organiser,
    their own unions' nominations for a nominating union; oldest first."""
    activity, vote_org = vote_activity(session, activity_id)
    if not _reaches(actor, vote_org):
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    stmt = select(Candidate).where(Candidate.activity_id == activity.id)
    if not organises(actor, vote_org):
        stmt = scoped(stmt, actor, MANAGE)
    if status is not None:
        stmt = stmt.where(Candidate.status == status)
    return list(session.scalars(stmt.order_by(Candidate.id).limit(2000)))


def member_vote(session: Session, *, member: MemberInfo, activity_id: int) -> Activity:
    """The vote as a member may see it (published, of their org chain); else 404."""
    activity = visible_activity(session, member=member, activity_id=activity_id)
    if activity.kind != ActivityKind.VOTE:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return activity


def approved_one(session: Session, *, activity_id: int, candidate_id: int) -> Candidate:
    """An approved candidate of the vote; anything else is "not found"."""
    found = session.get(Candidate, candidate_id)
    if (
        found is None
        or found.activity_id != activity_id
        or found.status != CandidateStatus.APPROVED
    ):
        raise NotFound(VoteError.CANDIDATE_NOT_FOUND, f"candidate {candidate_id} not found")
    return found


def approved(session: Session, *, activity_id: int, category: str | None = None) -> list[Candidate]:
    stmt = select(Candidate).where(
        Candidate.activity_id == activity_id, Candidate.status == CandidateStatus.APPROVED
    )
    if category:
        stmt = stmt.where(Candidate.category == category)
    return list(session.scalars(stmt.order_by(Candidate.id).limit(2000)))

"""Members' requests to join, move and leave (:class:`MembershipRequest`), as a queue: the
staff of the org a request is for see it (scoped to their subtree, personal data masked)
and decide it once; the member sees their own as their membership history.

What each kind's approval does lives in :mod:`gonghui.members.joining` and
:mod:`gonghui.members.moving`; :mod:`gonghui.members.decisions` picks by kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import Conflict, NotFound
from gonghui.members import review
from gonghui.members.errors import MembersError
from gonghui.members.models import (
    MembershipRequest,
    RequestKind,
    RequestStatus,
    RosterEntry,
)
from gonghui.members.review import show_proof
from gonghui.orgs.models import Org
from gonghui.pii import PiiField, masked
from gonghui.tenancy import Actor, Permission, get_scoped, scoped

MAX_PAGE = 200


@dataclass(frozen=True)
class RequestView:
    """A request with personal data masked, and the names of the orgs it concerns."""

    id: int
    kind: str
    status: str
    user_id: int
    org_id: int
    org_name: str
    from_org_id: int | None
    from_org_name: str | None
    roster_entry_id: int | None
    name: str | None
    id_number: str | None
    phone: str | None
    employer: str | None
    job: str | None
    note: str | None
    has_proof: bool
    decided_at: datetime | None
    decision_note: str | None
    created_at: datetime


def view(session: Session, req: MembershipRequest) -> RequestView:
    name_enc, id_enc, phone_enc = req.name_enc, req.id_number_enc, req.phone_enc
    if req.kind != RequestKind.JOIN and req.roster_entry_id is not None:
        # A member's transfer or leaving: who they are is their roster entry.
        entry = session.get(RosterEntry, req.roster_entry_id)
        if entry is not None:
            name_enc, id_enc, phone_enc = entry.name_enc, entry.id_number_enc, entry.phone_enc
    org = session.get(Org, req.org_id)
    from_org = session.get(Org, req.from_org_id) if req.from_org_id is not None else None
    return RequestView(
        id=req.id,
        kind=str(req.kind),
        status=str(req.status),
        user_id=req.user_id,
        org_id=req.org_id,
        org_name=org.name if org else "",
        from_org_id=req.from_org_id,
        from_org_name=from_org.name if from_org else None,
        roster_entry_id=req.roster_entry_id,
        name=masked(PiiField.NAME, name_enc),
        id_number=masked(PiiField.ID_NUMBER, id_enc),
        phone=masked(PiiField.PHONE, phone_enc),
        employer=req.employer,
        job=req.job,
        note=req.note,
        has_proof=req.proof_path is not None,
        decided_at=req.decided_at,
        decision_note=req.decision_note,
        created_at=req.created_at,
    )


def add_pending(session: Session, req: MembershipRequest) -> MembershipRequest:
    """Store a new pending request; the partial unique index keeps one open per account."""
    try:
        with session.begin_nested():
            session.add(req)
    except IntegrityError as exc:
        raise Conflict(
            MembersError.REQUEST_PENDING,
            "you already have a request waiting for your union",
            keep_changes=True,  # an attempt's audit row stays
        ) from exc
    return req


def list_requests(
    session: Session,
    *,
    actor: Actor,
    kind: RequestKind | None = None,
    status: RequestStatus | None = RequestStatus.PENDING,
    after_id: int | None = None,
    limit: int = 50,
) -> list[MembershipRequest]:
    """Requests for the orgs of the staff member's subtree, oldest first."""
    stmt = scoped(select(MembershipRequest), actor, Permission.MEMBERS_MANAGE)
    if kind is not None:
        stmt = stmt.where(MembershipRequest.kind == kind)
    if status is not None:
        stmt = stmt.where(MembershipRequest.status == status)
    if after_id is not None:
        stmt = stmt.where(MembershipRequest.id > after_id)
    stmt = stmt.order_by(MembershipRequest.id).limit(min(max(limit, 1), MAX_PAGE))
    return list(session.scalars(stmt))


def count_pending(session: Session, *, actor: Actor) -> int:
    """Join, transfer and leave requests waiting in the caller's subtree (the console
    home's figure)."""
    stmt = scoped(select(func.count(MembershipRequest.id)), actor, Permission.MEMBERS_MANAGE)
    return int(session.scalar(stmt.where(MembershipRequest.status == RequestStatus.PENDING)) or 0)


def get_request(session: Session, *, actor: Actor, request_id: int) -> MembershipRequest:
    """One request for an org the staff member manages; anywhere else reads as not found."""
    return get_scoped(session, MembershipRequest, request_id, actor, Permission.MEMBERS_MANAGE)


def history(session: Session, *, user_id: int, limit: int = 50) -> list[MembershipRequest]:
    """The member's own requests, newest first: their membership history."""
    return list(
        session.scalars(
            select(MembershipRequest)
            .where(MembershipRequest.user_id == user_id)
            .order_by(MembershipRequest.id.desc())
            .limit(min(max(limit, 1), MAX_PAGE))
        )
    )


def pending_for_user(session: Session, *, user_id: int) -> MembershipRequest | None:
    return session.scalar(
        select(MembershipRequest).where(
            MembershipRequest.user_id == user_id,
            MembershipRequest.status == RequestStatus.PENDING,
        )
    )


def decide(
    session: Session,
    *,
    actor: Actor,
    request_id: int,
    status: RequestStatus,
    note: str | None,
) -> MembershipRequest:
    """Mark the request decided, once: of two staff deciding at once exactly one wins (a
    compare-and-set on its status); the other gets ``members.request_already_decided``."""
    req = get_request(session, actor=actor, request_id=request_id)
    return review.decide_once(
        session, req, actor=actor, status=status, note=note, taken=MembersError.REQUEST_DECIDED
    )


def audit_decision(session: Session, *, actor: Actor, req: MembershipRequest, action: str) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        org_id=req.org_id,
        subject_type="membership_request",
        subject_id=req.id,
        reason=req.decision_note,
        details={"user_id": req.user_id, "kind": str(req.kind)},
    )


def reject(session: Session, *, actor: Actor, request_id: int, note: str) -> MembershipRequest:
    """Refuse a request, saying why: the member sees the note in their history."""
    req = decide(
        session, actor=actor, request_id=request_id, status=RequestStatus.REJECTED, note=note
    )
    audit_decision(session, actor=actor, req=req, action=f"members.{req.kind}_reject")
    return req


def withdraw(session: Session, *, user_id: int, request_id: int) -> MembershipRequest:
    """The member takes back their own pending request (then they may make another)."""
    changed = session.execute(
        update(MembershipRequest)
        .where(
            MembershipRequest.id == request_id,
            MembershipRequest.user_id == user_id,
            MembershipRequest.status == RequestStatus.PENDING,
        )
        .values(status=RequestStatus.WITHDRAWN, decided_by=user_id, decided_at=now())
        .execution_options(synchronize_session=False)
    )
    if rowcount(changed) != 1:
        raise NotFound(MembersError.REQUEST_NOT_FOUND, "you have no pending request with this id")
    req = session.get(MembershipRequest, request_id)
    assert req is not None
    session.refresh(req)
    audit.record(
        session,
        actor=Actor(user_id=user_id),
        action=f"members.{req.kind}_withdraw",
        org_id=req.org_id,
        subject_type="membership_request",
        subject_id=req.id,
    )
    return req


def open_proof(session: Session, *, actor: Actor, request_id: int) -> tuple[bytes, str]:
    """A join application's proof image; looking at it is audited, as a review's is."""
    req = get_request(session, actor=actor, request_id=request_id)
    return show_proof(
        session,
        actor=actor,
        org_id=req.org_id,
        subject=("membership_request", req.id),
        path=req.proof_path,
        content_type=req.proof_content_type,
    )

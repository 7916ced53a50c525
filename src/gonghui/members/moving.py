"""A member's own requests to move to another union (转会) and to leave (退会).

A transfer is decided by the receiving union's staff: accepting moves the roster entry and
the membership with the same service the staff's transfer uses (a transfer row and an audit
row on each side). Leaving is confirmed by the member's union's staff rather than taking
effect at once: it ends the member's benefits and their place on the roster, the union
settles their dues and records first, and a borrowed phone should not be enough to end
someone's membership. Confirming ends the roster entry and the membership; both rows stay,
as history (and for a return).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.accounts import principal as principals
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, PermissionDenied, field_error
from gonghui.members import joining, requests, roster
from gonghui.members.errors import MembersError
from gonghui.members.models import (
    Membership,
    MembershipRequest,
    MembershipStatus,
    RequestKind,
    RequestStatus,
    RosterEntry,
)
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor


def _membership(session: Session, user_id: int) -> Membership:
    membership = session.scalar(
        select(Membership).where(
            Membership.user_id == user_id, Membership.status == MembershipStatus.VERIFIED
        )
    )
    if membership is None:
        raise PermissionDenied(MembersError.NOT_A_MEMBER, "only a verified member may ask this")
    return membership


def _audit_request(
    session: Session, *, user_id: int, ip: str | None, req: MembershipRequest, sides: list[int]
) -> None:
    for side in dict.fromkeys(sides):
        audit.record(
            session,
            actor=Actor(user_id=user_id, ip=ip),
            action=f"members.{req.kind}_request",
            org_id=side,
            subject_type="membership_request",
            subject_id=req.id,
            reason=req.note,
            details={"from_org_id": req.from_org_id, "to_org_id": req.org_id},
        )


def request_transfer(
    session: Session, *, user_id: int, to_org_id: int, note: str | None, ip: str | None = None
) -> MembershipRequest:
    """Ask to move to ``to_org_id`` (a grassroots union open to applications)."""
    membership = _membership(session, user_id)
    target = joining.open_union(session, org_id=to_org_id)
    if target.id == membership.org_id:
        raise InvalidInput(
            MembersError.TRANSFER_SAME_ORG,
            "you are already a member of this union",
            [field_error("to_org_id", MembersError.TRANSFER_SAME_ORG, "same union")],
        )
    req = requests.add_pending(
        session,
        MembershipRequest(
            kind=RequestKind.TRANSFER,
            user_id=user_id,
            org_id=target.id,
            from_org_id=membership.org_id,
            roster_entry_id=membership.roster_entry_id,
            note=note,
        ),
    )
    _audit_request(session, user_id=user_id, ip=ip, req=req, sides=[membership.org_id, target.id])
    return req


def request_leave(
    session: Session, *, user_id: int, note: str | None, ip: str | None = None
) -> MembershipRequest:
    """Ask the member's union to end their membership."""
    membership = _membership(session, user_id)
    req = requests.add_pending(
        session,
        MembershipRequest(
            kind=RequestKind.LEAVE,
            user_id=user_id,
            org_id=membership.org_id,
            from_org_id=membership.org_id,
            roster_entry_id=membership.roster_entry_id,
            note=note,
        ),
    )
    _audit_request(session, user_id=user_id, ip=ip, req=req, sides=[membership.org_id])
    return req


def _entry_as_asked(session: Session, req: MembershipRequest) -> RosterEntry:
    """The request's roster entry, still where it was when the member asked."""
    entry = session.get(RosterEntry, req.roster_entry_id) if req.roster_entry_id else None
    if entry is None or entry.left_at is not None or entry.org_id != req.from_org_id:
        raise Conflict(
            MembersError.REQUEST_STALE,
            "the member's union changed since they asked; reject this request",
        )
    return entry


def accept_transfer(
    session: Session, *, actor: Actor, request_id: int, note: str | None
) -> MembershipRequest:
    """The receiving union takes the member in: their entry and membership move to it."""
    req = requests.decide(
        session, actor=actor, request_id=request_id, status=RequestStatus.APPROVED, note=note
    )
    entry = _entry_as_asked(session, req)
    target = session.get(Org, req.org_id)
    if target is None or target.archived_at is not None:
        raise Conflict(MembersError.ORG_ARCHIVED, "cannot transfer into an archived org")
    roster.move_entry(
        session, actor=actor, entry=entry, target=target, reason=req.note or "member request"
    )
    requests.audit_decision(session, actor=actor, req=req, action="members.transfer_approve")
    return req


def confirm_leave(
    session: Session, *, actor: Actor, request_id: int, note: str | None
) -> MembershipRequest:
    """The union confirms: the roster entry ends and the membership with it."""
    req = requests.decide(
        session, actor=actor, request_id=request_id, status=RequestStatus.APPROVED, note=note
    )
    entry = _entry_as_asked(session, req)
    entry.left_at = entry.updated_at = now()
    membership = session.scalar(select(Membership).where(Membership.roster_entry_id == entry.id))
    if membership is not None:
        membership.status = MembershipStatus.LEFT
        principals.changed(session, user_id=membership.user_id)
    requests.audit_decision(session, actor=actor, req=req, action="members.leave_approve")
    session.flush()
    return req

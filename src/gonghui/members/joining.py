"""Applying to join the union (入会申请): a signed-in worker on no roster chooses a grassroots
union that accepts applications, fills the form and attaches a proof; the union's staff
approve (the worker joins the roster and becomes its verified member, in one transaction)
or reject with a note.

Whether an application is taken tells whether its ID number is on a roster, so applying is
a verification attempt: the same limits and audit (:func:`verification.screen`), and an ID
number already on a roster gets the verification's one refusal, while the staff of that
roster's union are told (a :class:`VerificationFlag`).
"""

from __future__ import annotations

import uuid
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hooks, ratelimit
from gonghui.accounts import principal as principals
from gonghui.accounts.models import User
from gonghui.audit import service as audit
from gonghui.clock import local_day, now
from gonghui.errors import Conflict, InvalidInput, NotFound, RateLimited, field_error
from gonghui.members import requests, review, service, verification
from gonghui.members.errors import MembersError
from gonghui.members.models import (
    Membership,
    MembershipRequest,
    MembershipStatus,
    RequestKind,
    RequestStatus,
    RosterEntry,
)
from gonghui.orgs.models import Org, OrgLevel
from gonghui.pii import PiiField, blind_index, narrow_key, seal, seal_bytes, unseal
from gonghui.storage import get_store
from gonghui.tenancy import Actor, Permission, require_org, scoped, within

# Unions a worker may apply to (or move to): the grassroots level of the tree.
JOINABLE_LEVELS = (OrgLevel.GRASSROOTS, OrgLevel.ENTERPRISE)
# Areas a worker searches within.
AREA_LEVELS = (OrgLevel.CITY, OrgLevel.DISTRICT)
SEARCH_RESULTS = 20
SEARCHES_PER_MINUTE = 30
SEARCHES_PER_ADDRESS_MINUTE = 300
MAX_AREAS = 500


def areas(session: Session) -> list[Org]:
    """The cities and districts a worker may search within, in tree order. Org names and
    codes are public (members name their union by them)."""
    return list(
        session.scalars(
            select(Org)
            .where(Org.level.in_(AREA_LEVELS), Org.archived_at.is_(None))
            .order_by(Org.path)
            .limit(MAX_AREAS)
        )
    )


def search_unions(
    session: Session, *, user_id: int, area_id: int, query: str, ip: str | None = None
) -> list[Org]:
    """Grassroots unions accepting applications within the area, whose name contains
    ``query``; at most ``SEARCH_RESULTS``, and ``SEARCHES_PER_MINUTE`` searches per account
    (``SEARCHES_PER_ADDRESS_MINUTE`` per address)."""
    keys = [(f"join-search:{user_id}", SEARCHES_PER_MINUTE)]
    if (bucket := ratelimit.address_bucket(ip)) is not None:
        keys.append((f"join-search-ip:{bucket}", SEARCHES_PER_ADDRESS_MINUTE))
    for key, limit in keys:
        decision = ratelimit.hit(key, limit=limit, window_s=60)
        if not decision.allowed:
            raise RateLimited(
                MembersError.SEARCH_THROTTLED,
                "too many searches; try again in a minute",
                retry_after_s=decision.retry_after_s,
            )
    area = session.scalar(
        select(Org).where(Org.id == area_id, Org.level.in_(AREA_LEVELS), Org.archived_at.is_(None))
    )
    if area is None:
        raise NotFound(
            "org.not_found",
            f"no city or district {area_id}",
            [field_error("area_id", "org.not_found", "choose a city or district")],
        )
    stmt = select(Org).where(
        Org.level.in_(JOINABLE_LEVELS),
        Org.accepts_applications.is_(True),
        Org.archived_at.is_(None),
        within(Org.path, area.path),
    )
    query = query.strip()
    if query:
        stmt = stmt.where(Org.name.contains(query, autoescape=True))
    return list(session.scalars(stmt.order_by(Org.name, Org.id).limit(SEARCH_RESULTS)))


def open_union(session: Session, *, org_id: int | None = None, code: str | None = None) -> Org:
    """The grassroots union a worker chose (by id or by the code it gives its members), if
    it accepts applications; otherwise one "not found" whichever the reason."""
    stmt = select(Org).where(
        Org.level.in_(JOINABLE_LEVELS),
        Org.accepts_applications.is_(True),
        Org.archived_at.is_(None),
    )
    if code is not None:
        stmt = stmt.where(Org.code == code.strip())
    else:
        stmt = stmt.where(Org.id == org_id)
    org: Org | None = session.scalar(stmt)
    if org is None:
        field = "org_code" if code is not None else "org_id"
        raise NotFound(
            MembersError.UNION_NOT_OPEN,
            "no grassroots union accepting applications was found",
            [field_error(field, MembersError.UNION_NOT_OPEN, "no such union open to applications")],
        )
    return org


def _verified(session: Session, user_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(
            Membership.user_id == user_id, Membership.status != MembershipStatus.LEFT
        )
    )


def apply(
    session: Session,
    *,
    user_id: int,
    org_id: int,
    name: str,
    id_number: str,
    phone: str | None,
    employer: str,
    job: str,
    note: str | None,
    proof: BinaryIO,
    ip: str | None = None,
) -> MembershipRequest:
    """Apply to join ``org_id``. Must come first in its unit of work, as a verification
    attempt does (its limits and refusals commit on their own)."""
    name, employer, job = name.strip(), employer.strip(), job.strip()
    missing = [f for f, v in (("name", name), ("employer", employer), ("job", job)) if not v]
    if missing:
        raise InvalidInput(
            "members.field_required",
            "fill in every field",
            [field_error(f, "members.field_required", "required") for f in missing],
        )
    # Judged first: neither reads anything about the rosters.
    data, content_type, ext = review.read_proof(proof)
    # The limits first: they count in transactions of their own, which on SQLite wait for
    # this one's once it has read anything.
    screened = verification.screen(
        session, user_id=user_id, id_number=id_number, channel=verification.Channel.JOIN, ip=ip
    )
    org = open_union(session, org_id=org_id)
    if _verified(session, user_id) is not None:
        raise Conflict(MembersError.ALREADY_VERIFIED, "you are already a member")
    if requests.pending_for_user(session, user_id=user_id) is not None:
        raise Conflict(
            MembersError.REQUEST_PENDING, "you already have a request waiting for your union"
        )
    entry = session.scalar(
        select(RosterEntry).where(RosterEntry.id_number_hash == screened.id_hash)
    )
    phone = (phone or "").strip() or None
    req = MembershipRequest(
        kind=RequestKind.JOIN,
        user_id=user_id,
        org_id=org.id,
        name_hash=blind_index(PiiField.NAME, name),
        name_enc=seal(PiiField.NAME, name),
        id_number_hash=screened.id_hash,
        id_number_enc=seal(PiiField.ID_NUMBER, screened.number),
        phone_hash=blind_index(PiiField.PHONE, phone) if phone else None,
        phone_enc=seal(PiiField.PHONE, phone) if phone else None,
        employer=employer,
        job=job,
        note=note,
    )

    def record(outcome: verification.Outcome) -> None:
        verification.record_attempt(
            session,
            user_id=user_id,
            ip=ip,
            channel=verification.Channel.JOIN,
            outcome=outcome,
            number=screened.number,
            entry=entry,
        )

    if service.on_roster(entry):
        # Already a member somewhere: the answer is the verification's (it says nothing
        # about rosters), the refusal stays in the member's history, and the union whose
        # roster lists the number is told.
        record(verification.Outcome.JOIN_REFUSED_ON_ROSTER)
        req.status, req.failure_code = RequestStatus.REFUSED, MembersError.ON_OTHER_ROSTER
        req.decided_at = now()
        session.add(req)
        verification.flag_id_number(session, id_hash=screened.id_hash, accounts=1)
        raise verification.verification_failed()
    record(verification.Outcome.JOIN_APPLIED)
    req.proof_path = f"membership-proofs/{uuid.uuid4().hex}.{ext}"
    req.proof_content_type = content_type
    requests.add_pending(session, req)
    audit.record(
        session,
        actor=Actor(user_id=user_id, ip=ip),
        action="members.join_apply",
        org_id=org.id,
        subject_type="membership_request",
        subject_id=req.id,
    )
    # An identity document: encrypted at rest like the other personal data.
    get_store().put(req.proof_path, [seal_bytes(review.PROOF_PURPOSE, data)])
    return req


def approve(
    session: Session, *, actor: Actor, request_id: int, note: str | None
) -> MembershipRequest:
    """The applicant joins the union's roster and becomes its verified member, together:
    either both happen or neither. Decided once (two approvals at once: one wins)."""
    req = requests.decide(
        session, actor=actor, request_id=request_id, status=RequestStatus.APPROVED, note=note
    )
    assert req.id_number_hash is not None
    assert req.id_number_enc is not None
    assert req.name_hash is not None
    assert req.name_enc is not None
    entry = session.scalar(
        select(RosterEntry).where(RosterEntry.id_number_hash == req.id_number_hash)
    )
    if service.on_roster(entry):
        # Added to a roster since they applied (an import): not this union's to take.
        raise Conflict(MembersError.ON_OTHER_ROSTER, "this person is on a union's roster already")
    if entry is None:
        entry = RosterEntry(id_number_hash=req.id_number_hash, id_number_enc=req.id_number_enc)
        session.add(entry)
    entry.org_id, entry.left_at = req.org_id, None
    entry.name_hash, entry.name_enc = req.name_hash, req.name_enc
    entry.phone_hash, entry.phone_enc = req.phone_hash, req.phone_enc
    entry.phone_key = narrow_key(req.phone_hash) if req.phone_hash else None
    entry.join_date, entry.updated_at = local_day(), now()
    session.flush()
    membership = service.claim_membership(
        session, user_id=req.user_id, entry=entry, via="application"
    )
    req.roster_entry_id = entry.id
    requests.audit_decision(session, actor=actor, req=req, action="members.join_approve")
    session.flush()
    hooks.emit(
        session,
        org_id=entry.org_id,
        event=hooks.OrgEvent.VERIFICATION_APPROVED,
        payload={"membership_id": membership.id, "user_id": req.user_id, "via": "application"},
    )
    principals.changed(session, user_id=req.user_id)
    return req


def account_phone(session: Session, *, user_id: int) -> str | None:
    """The phone the account signed in with, to prefill the application."""
    sealed = session.scalar(select(User.phone_enc).where(User.id == user_id))
    return unseal(PiiField.PHONE, sealed) if sealed else None


def set_open_to_applications(session: Session, *, actor: Actor, org_id: int, accepts: bool) -> Org:
    """Open or close a union to applications (staff managing its members)."""
    org = require_org(session, actor, Permission.MEMBERS_MANAGE, org_id)
    if org.accepts_applications != accepts:
        org.accepts_applications = accepts
        audit.record(
            session,
            actor=actor,
            action="members.join_settings",
            org_id=org.id,
            subject_type="org",
            subject_id=org.id,
            details={"accepts_applications": accepts},
        )
        session.flush()
    return org


def managed_unions(session: Session, *, actor: Actor, limit: int = 200) -> list[Org]:
    """The grassroots unions whose applications the staff member decides."""
    stmt = scoped(select(Org), actor, Permission.MEMBERS_MANAGE).where(
        Org.level.in_(JOINABLE_LEVELS), Org.archived_at.is_(None)
    )
    return list(session.scalars(stmt.order_by(Org.path).limit(limit)))

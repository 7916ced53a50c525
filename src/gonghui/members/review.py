"""Manual review of a failed verification: the member uploads a proof image, an operator of
the org approves (the person joins the roster if missing and becomes a verified member) or
rejects with a note. Decisions are audited; a request is decided once."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.accounts import principal as principals
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import Conflict, InvalidInput, NotFound, field_error
from gonghui.images import ImageTooLarge, NotAnImage, open_image
from gonghui.members import service, verification
from gonghui.members.errors import MembersError
from gonghui.members.models import (
    Membership,
    MembershipRequest,
    MembershipStatus,
    RequestStatus,
    ReviewStatus,
    RosterEntry,
    VerificationRequest,
)
from gonghui.orgs.errors import OrgsError
from gonghui.orgs.models import Org
from gonghui.pii import PiiField, blind_index, masked, seal, seal_bytes, unseal_bytes
from gonghui.storage import get_store
from gonghui.tenancy import Actor, Permission, get_scoped, scoped

PROOF_MAX_BYTES = 5 * 1024 * 1024
PROOF_PURPOSE = "verification_proof"
# Pillow's format name -> (content type, file extension). Only these are accepted.
PROOF_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}


@dataclass(frozen=True)
class ReviewView:
    id: int
    user_id: int
    org_id: int
    name: str
    id_number: str
    failure_code: str
    note: str | None
    status: str
    has_proof: bool
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str | None
    created_at: datetime


def view(req: VerificationRequest) -> ReviewView:
    return ReviewView(
        id=req.id,
        user_id=req.user_id,
        org_id=req.org_id,
        name=masked(PiiField.NAME, req.name_enc) or "",
        id_number=masked(PiiField.ID_NUMBER, req.id_number_enc) or "",
        failure_code=req.failure_code,
        note=req.note,
        status=str(req.status),
        has_proof=req.proof_path is not None,
        decided_by=req.decided_by,
        decided_at=req.decided_at,
        decision_note=req.decision_note,
        created_at=req.created_at,
    )


def read_proof(stream: BinaryIO, *, max_bytes: int = PROOF_MAX_BYTES) -> tuple[bytes, str, str]:
    """The image bytes, content type and extension, judged from the bytes themselves (the
    client's filename and content type are not trusted)."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidInput(
            MembersError.PROOF_TOO_LARGE,
            f"the proof image must be at most {max_bytes // (1024 * 1024)} MB",
            [field_error("proof", MembersError.PROOF_TOO_LARGE, "too large")],
        )
    try:
        with open_image(io.BytesIO(data)) as image:
            kind = image.format or ""
            image.verify()
    except NotAnImage as exc:
        raise _not_image() from exc
    except ImageTooLarge as exc:
        raise InvalidInput(
            MembersError.PROOF_TOO_LARGE,
            str(exc),
            [field_error("proof", MembersError.PROOF_TOO_LARGE, str(exc))],
        ) from exc
    if kind not in PROOF_FORMATS:
        raise _not_image()
    content_type, ext = PROOF_FORMATS[kind]
    return data, content_type, ext


def _not_image() -> InvalidInput:
    return InvalidInput(
        MembersError.PROOF_NOT_IMAGE,
        "the proof must be a JPEG, PNG or WebP image",
        [field_error("proof", MembersError.PROOF_NOT_IMAGE, "JPEG, PNG or WebP only")],
    )


def create_request(
    session: Session,
    *,
    user_id: int,
    org_id: int,
    name: str,
    id_number: str,
    note: str | None,
    proof: BinaryIO | None,
    ip: str | None = None,
) -> VerificationRequest:
    """A request for the staff of ``org_id``. It is a verification attempt like any other
    (limits, audit) and must come first in its unit of work (see
    :func:`verification.verify_member`); what the match found is kept for the reviewer, in
    the uniform words the member may see."""
    name = name.strip()
    data = proof_path = content_type = None
    if proof is not None:  # judged first: it reads nothing about the rosters
        data, content_type, ext = read_proof(proof)
        proof_path = f"verification-proofs/{uuid.uuid4().hex}.{ext}"
    number, failure = verification.screen_for_review(
        session, user_id=user_id, name=name, id_number=id_number, ip=ip
    )
    org = session.get(Org, org_id)
    if org is None or org.archived_at is not None:
        raise NotFound(OrgsError.NOT_FOUND, f"org {org_id} not found", keep_changes=True)
    req = VerificationRequest(
        user_id=user_id,
        org_id=org.id,
        name_hash=blind_index(PiiField.NAME, name),
        name_enc=seal(PiiField.NAME, name),
        id_number_hash=blind_index(PiiField.ID_NUMBER, number),
        id_number_enc=seal(PiiField.ID_NUMBER, number),
        failure_code=failure,
        proof_path=proof_path,
        proof_content_type=content_type,
        note=note,
    )
    try:
        with session.begin_nested():
            session.add(req)
    except IntegrityError as exc:
        # The partial unique index: one pending request per user.
        raise Conflict(
            MembersError.REVIEW_PENDING,
            "you already have a request under review",
            keep_changes=True,  # the attempt's audit row stays
        ) from exc
    if proof_path is not None and data is not None:
        # An identity document: encrypted at rest like the other personal data.
        get_store().put(proof_path, [seal_bytes(PROOF_PURPOSE, data)])
    return req


def list_requests(
    session: Session,
    *,
    actor: Actor,
    status: ReviewStatus | None = ReviewStatus.PENDING,
    after_id: int | None = None,
    limit: int = 50,
) -> list[VerificationRequest]:
    stmt = scoped(select(VerificationRequest), actor, Permission.MEMBERS_MANAGE)
    if status is not None:
        stmt = stmt.where(VerificationRequest.status == status)
    if after_id is not None:
        stmt = stmt.where(VerificationRequest.id > after_id)
    stmt = stmt.order_by(VerificationRequest.id).limit(min(max(limit, 1), 200))
    return list(session.scalars(stmt))


def count_pending(session: Session, *, actor: Actor) -> int:
    """Reviews waiting for a decision in the caller's subtree (the console home's figure)."""
    stmt = scoped(select(func.count(VerificationRequest.id)), actor, Permission.MEMBERS_MANAGE)
    return int(session.scalar(stmt.where(VerificationRequest.status == ReviewStatus.PENDING)) or 0)


def get_request(session: Session, *, actor: Actor, request_id: int) -> VerificationRequest:
    return get_scoped(session, VerificationRequest, request_id, actor, Permission.MEMBERS_MANAGE)


def open_proof(session: Session, *, actor: Actor, request_id: int) -> tuple[bytes, str]:
    """The proof image and its content type; looking at it is audited (it shows an
    identity document)."""
    req = get_request(session, actor=actor, request_id=request_id)
    return show_proof(
        session,
        actor=actor,
        org_id=req.org_id,
        subject=("verification_request", req.id),
        path=req.proof_path,
        content_type=req.proof_content_type,
    )


def show_proof(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    subject: tuple[str, int],
    path: str | None,
    content_type: str | None,
) -> tuple[bytes, str]:
    """A stored proof image (of a review or a membership request) for staff already
    allowed to see its request; every look is audited as ``pii.view_proof``."""
    if path is None or content_type is None:
        raise NotFound("members.proof_not_found", "this request has no proof image")
    audit.record(
        session,
        actor=actor,
        action="pii.view_proof",
        org_id=org_id,
        subject_type=subject[0],
        subject_id=subject[1],
        field="proof",
    )
    with get_store().open(path) as f:
        image = unseal_bytes(PROOF_PURPOSE, f.read())
    return image, content_type


def _decide(
    session: Session, *, actor: Actor, request_id: int, status: ReviewStatus, note: str | None
) -> VerificationRequest:
    req = get_request(session, actor=actor, request_id=request_id)
    decide_once(
        session, req, actor=actor, status=status, note=note, taken=MembersError.REVIEW_DECIDED
    )
    return req


Decidable = TypeVar("Decidable", VerificationRequest, MembershipRequest)
_PENDING: dict[type[Any], StrEnum] = {
    VerificationRequest: ReviewStatus.PENDING,
    MembershipRequest: RequestStatus.PENDING,
}


def decide_once(
    session: Session,
    req: Decidable,
    *,
    actor: Actor,
    status: StrEnum,
    note: str | None,
    taken: str,
) -> Decidable:
    """Mark a pending request (a verification review, a membership request) decided, once:
    a compare-and-set on its status, so that of two staff deciding at once exactly one
    wins and the other gets ``Conflict(taken)``."""
    model = type(req)
    changed = session.execute(
        update(model)
        .where(model.id == req.id, model.status == _PENDING[model])
        .values(status=status, decided_by=actor.user_id, decided_at=now(), decision_note=note)
        .execution_options(synchronize_session=False)
    )
    if rowcount(changed) != 1:
        raise Conflict(taken, "this request has already been decided")
    session.refresh(req)
    return req


def approve(
    session: Session, *, actor: Actor, request_id: int, note: str | None = None
) -> VerificationRequest:
    """Approve: the person joins the request's org roster if they are on no roster (or
    their entry's name is corrected when it is in the operator's subtree), and the user
    becomes a verified member."""
    req = _decide(
        session, actor=actor, request_id=request_id, status=ReviewStatus.APPROVED, note=note
    )
    entry = session.scalar(
        select(RosterEntry).where(RosterEntry.id_number_hash == req.id_number_hash)
    )
    if entry is not None and entry.left_at is not None:
        # The person had left their union: they are taken up again, on this one's roster.
        entry.org_id, entry.left_at = req.org_id, None
        entry.name_hash, entry.name_enc = req.name_hash, req.name_enc
        entry.updated_at = now()
    elif entry is None:
        entry = RosterEntry(
            org_id=req.org_id,
            id_number_hash=req.id_number_hash,
            id_number_enc=req.id_number_enc,
            name_hash=req.name_hash,
            name_enc=req.name_enc,
        )
        session.add(entry)
        session.flush()
    else:
        # The operator may only correct an entry they manage; elsewhere is not theirs.
        in_scope = session.scalar(
            scoped(select(RosterEntry.id), actor, Permission.MEMBERS_MANAGE).where(
                RosterEntry.id == entry.id
            )
        )
        if in_scope is None:
            raise Conflict(
                MembersError.ON_OTHER_ROSTER,
                "this person is on the roster of a union outside yours",
            )
        entry.name_hash, entry.name_enc = req.name_hash, req.name_enc
        entry.updated_at = now()
    existing = session.scalar(select(Membership).where(Membership.user_id == req.user_id))
    if existing is not None and existing.status == MembershipStatus.VERIFIED:
        raise Conflict(MembersError.ALREADY_VERIFIED, "the user is already a verified member")
    holder = session.scalar(select(Membership).where(Membership.roster_entry_id == entry.id))
    if holder is not None and holder is not existing:
        # Another account holds this person's membership: the operator decided that the
        # requester is the person, so the membership moves, on the record.
        _move_membership(session, actor=actor, req=req, membership=holder)
        return req
    service.claim_membership(session, user_id=req.user_id, entry=entry, via="review")
    _audit_decision(session, actor=actor, req=req, action="members.review_approve")
    user_id = req.user_id
    hooks.emit(
        session,
        org_id=entry.org_id,
        event=hooks.OrgEvent.VERIFICATION_APPROVED,
        payload={"user_id": user_id, "via": "review", "request_id": req.id},
    )
    principals.changed(session, user_id=user_id)
    return req


def _move_membership(
    session: Session, *, actor: Actor, req: VerificationRequest, membership: Membership
) -> None:
    previous = membership.user_id
    if session.scalar(select(Membership.id).where(Membership.user_id == req.user_id)):
        raise Conflict(MembersError.CLAIMED_BY_OTHER, "the user holds another membership")
    membership.user_id = req.user_id
    membership.status = MembershipStatus.VERIFIED
    membership.verified_via = "review"
    membership.verified_at = now()
    membership.tags = list(entry_tags(session, membership.roster_entry_id))
    session.flush()
    _audit_decision(
        session,
        actor=actor,
        req=req,
        action="members.review_approve",
        moved_from_user_id=previous,
    )
    hooks.emit(
        session,
        org_id=membership.org_id,
        event=hooks.OrgEvent.VERIFICATION_APPROVED,
        payload={"user_id": req.user_id, "via": "review", "request_id": req.id},
    )
    principals.changed(session, user_id=previous)
    principals.changed(session, user_id=req.user_id)


def entry_tags(session: Session, entry_id: int) -> list[str]:
    return list(session.scalar(select(RosterEntry.tags).where(RosterEntry.id == entry_id)) or [])


def reject(session: Session, *, actor: Actor, request_id: int, note: str) -> VerificationRequest:
    req = _decide(
        session, actor=actor, request_id=request_id, status=ReviewStatus.REJECTED, note=note
    )
    _audit_decision(session, actor=actor, req=req, action="members.review_reject")
    hooks.emit(
        session,
        org_id=req.org_id,
        event=hooks.OrgEvent.VERIFICATION_REJECTED,
        payload={"user_id": req.user_id, "request_id": req.id, "note": req.decision_note},
    )
    return req


def _audit_decision(
    session: Session,
    *,
    actor: Actor,
    req: VerificationRequest,
    action: str,
    moved_from_user_id: int | None = None,
) -> None:
    details: dict[str, object] = {"user_id": req.user_id, "failure_code": req.failure_code}
    if moved_from_user_id is not None:
        details["moved_from_user_id"] = moved_from_user_id
    audit.record(
        session,
        actor=actor,
        action=action,
        org_id=req.org_id,
        subject_type="verification_request",
        subject_id=req.id,
        reason=req.decision_note,
        details=details,
    )


def latest_for_user(session: Session, *, user_id: int) -> VerificationRequest | None:
    return session.scalar(
        select(VerificationRequest)
        .where(VerificationRequest.user_id == user_id)
        .order_by(VerificationRequest.id.desc())
        .limit(1)
    )

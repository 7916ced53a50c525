"""Rosters, memberships, verification requests, roster imports and transfers.

Names, ID numbers and phones are stored as a blind index (``*_hash``) plus AES-GCM
ciphertext (``*_enc``); see :mod:`gonghui.pii`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    func,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class RosterEntry(Base):
    __tablename__ = "members_roster_entry"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    id_number_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # Finds candidates for a phone lookup, confirmed by ``phone_hash``: a 4-byte key keeps
    # this index small, since random 32-byte keys made every roster import rewrite it.
    phone_key: Mapped[int | None] = mapped_column(Integer, index=True)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    member_no: Mapped[str | None] = mapped_column(String(64))
    join_date: Mapped[date | None]
    # The union's labels for this person (activities can be limited to some), NULL when
    # none were given; the person's membership carries a copy, kept equal, which their
    # sign-in's claims include.
    tags: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    import_job_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)
    # Set when the person left the union (退会): the entry stays for the history (its
    # transfers, the membership that held it) but no longer counts as on a roster.
    left_at: Mapped[datetime | None]


def name_prefix(name_hash: Any) -> Any:
    """The first 4 bytes of the name's blind index (a column or a value): the key of the
    expression index that finds a name's candidates, confirmed by the full blind index.
    An expression index keeps itself up to date on every write, bulk imports included.
    The bounds are literals: the planner uses the index only for the same expression."""
    return func.substr(name_hash, literal_column("1"), literal_column("4"))


Index("ix_members_roster_entry_name_prefix", name_prefix(RosterEntry.name_hash))


class MembershipStatus(StrEnum):
    VERIFIED = "verified"
    SUSPENDED = "suspended"
    # The member left the union; the row stays (the wallet, draws and orders refer to it)
    # and is reused should the same account join again.
    LEFT = "left"


class Membership(Base):
    """A user verified as the person on a roster entry: one each way."""

    __tablename__ = "members_membership"

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), unique=True)
    roster_entry_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_roster_entry.id"), unique=True
    )
    # Kept equal to the roster entry's org (transfers move both in one transaction).
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    status: Mapped[MembershipStatus] = mapped_column(String(16), default=MembershipStatus.VERIFIED)
    verified_via: Mapped[str] = mapped_column(String(16), default="roster")
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    verified_at: Mapped[datetime] = mapped_column(default=now)


class ReviewStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class VerificationRequest(Base):
    """A manual-review request after an automatic match failed."""

    __tablename__ = "members_verification_request"
    __table_args__ = (
        # One pending review per user (see migration 0003).
        Index(
            "uq_members_verification_request_pending_user",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_members_verification_request_status_org", "status", "org_id"),
    )

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    name_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    id_number_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    id_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    failure_code: Mapped[str] = mapped_column(String(64))
    proof_path: Mapped[str | None] = mapped_column(String(255))
    proof_content_type: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[ReviewStatus] = mapped_column(String(16), default=ReviewStatus.PENDING)
    decided_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=now)


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(Base):
    __tablename__ = "members_import_job"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(512))
    status: Mapped[ImportStatus] = mapped_column(String(16), default=ImportStatus.QUEUED)
    bytes_total: Mapped[int] = mapped_column(default=0)
    bytes_done: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(default=0)
    rows_ok: Mapped[int] = mapped_column(default=0)
    rows_failed: Mapped[int] = mapped_column(default=0)
    rows_created: Mapped[int] = mapped_column(default=0)
    rows_updated: Mapped[int] = mapped_column(default=0)
    error_report_path: Mapped[str | None] = mapped_column(String(512))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=now)
    started_at: Mapped[datetime | None]
    # Refreshed by the importing process as it commits; an unfinished job whose heartbeat
    # stopped belongs to a process that died (see roster_import.recovery.tidy_imports).
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Transfer(Base):
    __tablename__ = "members_transfer"

    id: Mapped[IdPk]
    roster_entry_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_roster_entry.id"), index=True
    )
    from_org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    to_org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    by_user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(default=now)


class VerificationFlag(Base):
    """An ID number that several accounts tried to verify with: verification by it is
    locked, and the staff of the org whose roster lists it see the flag until they resolve
    it (which lifts the lock)."""

    __tablename__ = "members_verification_flag"

    id: Mapped[IdPk]
    id_number_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    roster_entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_roster_entry.id"))
    accounts: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))


class RequestKind(StrEnum):
    JOIN = "join"  # 入会申请: a worker on no roster asks a grassroots union to take them in
    TRANSFER = "transfer"  # 转会: a member asks to move to another union
    LEAVE = "leave"  # 退会: a member asks to leave their union


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    # Refused when it was made (the ID number is already on a roster); never pending.
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"  # by the member, while pending


class MembershipRequest(Base):
    """A member's request to join, move or leave, for the staff of ``org_id`` to decide (the
    union applied to, the receiving union, the union being left). It stays as the member's
    history once decided."""

    __tablename__ = "members_membership_request"
    __table_args__ = (
        # One open request per account, whatever its kind.
        Index(
            "uq_members_membership_request_pending_user",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_members_membership_request_status_kind_org", "status", "kind", "org_id"),
    )

    id: Mapped[IdPk]
    kind: Mapped[RequestKind] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    # The member's union when they asked (a transfer's or a leaving's).
    from_org_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    # The entry moved or ended; a join's once approved.
    roster_entry_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("members_roster_entry.id")
    )
    # A join's applicant, as on a roster entry (blind index + ciphertext).
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    name_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    id_number_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    employer: Mapped[str | None] = mapped_column(String(200))
    job: Mapped[str | None] = mapped_column(String(100))
    proof_path: Mapped[str | None] = mapped_column(String(255))
    proof_content_type: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[RequestStatus] = mapped_column(String(16), default=RequestStatus.PENDING)
    # Why a refused request was refused (never shown to the member, who sees one message).
    failure_code: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=now)

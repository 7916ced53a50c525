"""The member's wallet: vouchers, points, prizes; the append-only ledger; activity budgets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class VoucherStatus(StrEnum):
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    REVOKED = "revoked"


class PrizeStatus(StrEnum):
    AWAITING_ADDRESS = "awaiting_address"
    TO_SHIP = "to_ship"
    SHIPPED = "shipped"
    FORFEITED = "forfeited"


class LedgerKind(StrEnum):
    VOUCHER = "voucher"
    POINTS = "points"
    PRIZE = "prize"
    # Money: a member's payment for a mall order and its refund (PAY positive, REFUND
    # negative), and the union's subsidy of an order (ISSUE positive, REVOKE negative).
    PAYMENT = "payment"
    SUBSIDY = "subsidy"


class LedgerAction(StrEnum):
    ISSUE = "issue"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REVOKE = "revoke"
    PAY = "pay"
    REFUND = "refund"


class Voucher(Base):
    __tablename__ = "benefits_voucher"

    id: Mapped[IdPk]
    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), index=True
    )
    activity_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    value_cents: Mapped[int]
    threshold_cents: Mapped[int] = mapped_column(default=0)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    status: Mapped[VoucherStatus] = mapped_column(String(16), default=VoucherStatus.ISSUED)
    issued_at: Mapped[datetime] = mapped_column(default=now)
    # The merchants the voucher may be spent at, copied from its prize when issued (so a
    # later edit of the activity changes no voucher already in a wallet), read with the
    # voucher's own row at the till; None: any merchant of the issuing org's subtree.
    merchant_ids: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True))


class PointsAccount(Base):
    __tablename__ = "benefits_points_account"

    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(default=0)


class Prize(Base):
    """A physical prize won by a member, and where it is in fulfilment."""

    __tablename__ = "benefits_prize"
    # An activity's prizes by where they are in fulfilment: the shipping page's list and
    # the console home's count of prizes to ship.
    __table_args__ = (Index("ix_benefits_prize_activity_status", "activity_id", "status"),)

    id: Mapped[IdPk]
    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), index=True
    )
    activity_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[PrizeStatus] = mapped_column(String(16), default=PrizeStatus.AWAITING_ADDRESS)
    address_deadline: Mapped[datetime | None]
    # Delivery address (name, phone, address) sealed like any personal data.
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_given_at: Mapped[datetime | None]
    # What the operator entered on shipping it (the member's wallet shows them).
    courier_company: Mapped[str | None] = mapped_column(String(50))
    courier_no: Mapped[str | None] = mapped_column(String(50))
    shipped_at: Mapped[datetime | None]
    won_at: Mapped[datetime] = mapped_column(default=now)


class LedgerEntry(Base):
    """Every change to a member's benefits is one row; rows are never updated or deleted."""

    __tablename__ = "benefits_ledger_entry"
    __table_args__ = (Index("ix_benefits_ledger_entry_activity", "activity_id", "id"),)

    id: Mapped[IdPk]
    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), index=True
    )
    activity_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    kind: Mapped[LedgerKind] = mapped_column(String(16))
    action: Mapped[LedgerAction] = mapped_column(String(16))
    # Cents for vouchers, points for points, 1 for a prize; negative when taken away.
    amount: Mapped[int]
    voucher_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("benefits_voucher.id"))
    prize_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("benefits_prize.id"))
    source: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=now)


class Budget(Base):
    """An activity's budget; ``spent`` only grows through one conditional UPDATE."""

    __tablename__ = "benefits_budget"

    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), primary_key=True
    )
    cents_total: Mapped[int | None]
    cents_spent: Mapped[int] = mapped_column(default=0)
    points_total: Mapped[int | None]
    points_spent: Mapped[int] = mapped_column(default=0)

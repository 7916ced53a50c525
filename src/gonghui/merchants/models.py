"""Merchants that take the union's own vouchers, their cashiers, and each redemption."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Merchant(Base):
    """A shop that redeems the vouchers of its org's subtree (see :mod:`.redeem`)."""

    __tablename__ = "merchants_merchant"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Cashier(Base):
    """A merchant's cashier: a user who signs in with a password and redeems vouchers."""

    __tablename__ = "merchants_cashier"

    id: Mapped[IdPk]
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants_merchant.id"), index=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Redemption(Base):
    """A voucher redeemed at a merchant: at most one per voucher (the unique key is the
    second guard after the voucher's own conditional move to ``redeemed``)."""

    __tablename__ = "merchants_redemption"
    __table_args__ = (Index("ix_merchants_redemption_merchant_at", "merchant_id", "at"),)

    id: Mapped[IdPk]
    voucher_id: Mapped[int] = mapped_column(BigId, ForeignKey("benefits_voucher.id"), unique=True)
    merchant_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants_merchant.id"))
    cashier_id: Mapped[int] = mapped_column(BigId, ForeignKey("merchants_cashier.id"))
    membership_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_membership.id"))
    value_cents: Mapped[int]
    order_cents: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=now)

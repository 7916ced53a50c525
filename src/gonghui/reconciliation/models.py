"""Daily reconciliation with WeChat Pay: one report per day, and its differences."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Source(StrEnum):
    COUPONS = "coupons"  # a voucher grab's WeChat Pay coupons
    TRADES = "trades"  # payments and refunds (the trade bill)


class DifferenceKind(StrEnum):
    UNKNOWN_THERE = "unknown_there"  # recorded here, WeChat Pay has no record of it
    UNKNOWN_HERE = "unknown_here"  # WeChat Pay has it, we have no (or another) record
    AMOUNT = "amount_mismatch"  # both have it, for different amounts
    COUNT = "count_mismatch"  # both count them, to different totals


class ReconciliationReport(Base):
    """The comparison made for ``day`` (the latest run of it: a run again replaces it)."""

    __tablename__ = "reconciliation_report"

    id: Mapped[IdPk]
    day: Mapped[date] = mapped_column(unique=True)
    ok: Mapped[bool]
    # Records compared (ours and theirs), and what stopped the run if it did not finish.
    checked: Mapped[int] = mapped_column(default=0)
    differences: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    made_at: Mapped[datetime] = mapped_column(default=now)


class ReconciliationDifference(Base):
    __tablename__ = "reconciliation_difference"

    id: Mapped[IdPk]
    report_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("reconciliation_report.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[Source] = mapped_column(String(16))
    kind: Mapped[DifferenceKind] = mapped_column(String(24))
    # The record both sides name: a coupon id, a stock id, an out_trade_no, an out_refund_no.
    reference: Mapped[str] = mapped_column(String(64))
    ours_cents: Mapped[int | None]
    theirs_cents: Mapped[int | None]
    note: Mapped[str] = mapped_column(String(300), default="")

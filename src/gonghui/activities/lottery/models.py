"""A lottery's prize pool (stock is the hot row) and its ordered draw log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class PrizeKind(StrEnum):
    VOUCHER = "voucher"
    POINTS = "points"
    PHYSICAL = "physical"
    NONE = "none"


class DrawOutcome(StrEnum):
    WON = "won"
    NO_PRIZE = "no_prize"
    OUT_OF_STOCK = "out_of_stock"
    WIN_CAP = "win_cap"
    BUDGET = "budget_exhausted"


class PoolPrize(Base):
    __tablename__ = "activities_lottery_prize"
    __table_args__ = (UniqueConstraint("activity_id", "position"),)

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[PrizeKind] = mapped_column(String(16))
    weight: Mapped[int]
    initial_stock: Mapped[int]
    # Only ever changed by ``UPDATE ... SET stock = stock - 1 WHERE stock > 0``.
    stock: Mapped[int]
    value: Mapped[int] = mapped_column(default=0)


class Draw(Base):
    __tablename__ = "activities_lottery_draw"
    __table_args__ = (
        UniqueConstraint("activity_id", "membership_id", "draw_no"),
        # An activity's draws, by time: the console home counts today's with one range.
        Index("ix_activities_lottery_draw_activity_at", "activity_id", "at"),
    )

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), index=True
    )
    draw_no: Mapped[int]
    client_entropy: Mapped[str] = mapped_column(String(64))
    roll: Mapped[str] = mapped_column(String(64))
    # The prize the randomness picked, and what the member got (None: nothing).
    picked_position: Mapped[int]
    prize_position: Mapped[int | None]
    outcome: Mapped[DrawOutcome] = mapped_column(String(16))
    benefit_ref: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=now)

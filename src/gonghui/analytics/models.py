"""The scheduled aggregates the analytics pages read: one row per (org, month), per (org,
month, benefit kind) and per activity, written only by the aggregation job
(:mod:`gonghui.analytics.aggregate`), never by a member's request.

An org's row counts the members whose membership (or roster entry) is at that org itself;
a subtree's figure is the sum of its orgs' rows, added up when it is read. A member is in
one org at a time, so the sums count nobody twice. Months are calendar months in the
display zone, "2026-12".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.db import Base, BigId


class OrgMonth(Base):
    """Members of one org in one month: on its roster and verified at the month's end (or
    now, for the month under way), and how many of those took part in any activity."""

    __tablename__ = "analytics_org_month"

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    roster_members: Mapped[int] = mapped_column(default=0)
    verified_members: Mapped[int] = mapped_column(default=0)
    active_members: Mapped[int] = mapped_column(default=0)
    # Times its members took part (draws, quiz attempts, votes, claims, paid orders, entries).
    participations: Mapped[int] = mapped_column(default=0)


class BenefitMonth(Base):
    """Benefits of one kind (the ledger's: voucher, points, prize, subsidy) issued to and
    used by the members of one org in one month: ledger rows and their amounts (cents,
    points, or 1 a prize)."""

    __tablename__ = "analytics_benefit_month"

    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    issued_count: Mapped[int] = mapped_column(default=0)
    issued_amount: Mapped[int] = mapped_column(default=0)
    used_count: Mapped[int] = mapped_column(default=0)
    used_amount: Mapped[int] = mapped_column(default=0)


class ActivityFigures(Base):
    """One published activity: the members who took part (and how often) against the
    verified members of its org's subtree, and its budget against what it spent."""

    __tablename__ = "analytics_activity"

    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), primary_key=True
    )
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    # The month it starts in (display zone): the page lists a period's activities by it.
    month: Mapped[str] = mapped_column(String(7), index=True)
    participants: Mapped[int] = mapped_column(default=0)
    participations: Mapped[int] = mapped_column(default=0)
    eligible_members: Mapped[int] = mapped_column(default=0)
    budget_cents: Mapped[int | None]
    spent_cents: Mapped[int] = mapped_column(default=0)
    budget_points: Mapped[int | None]
    spent_points: Mapped[int] = mapped_column(default=0)


class AggregateRun(Base):
    """The job's state (one row, ``name`` "aggregates"): when the figures were last
    computed, and when they were last computed whole."""

    __tablename__ = "analytics_run"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    computed_at: Mapped[datetime]
    full_at: Mapped[datetime | None]
    # The months the last run recomputed, "2026-11..2026-12".
    months: Mapped[str] = mapped_column(String(32), default="")

"""Risk control's tables: per-activity policies, captcha challenges, anomaly flags."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class RiskPolicy(Base):
    """An activity's own limits (see :class:`gonghui.risk.policy.Limits`); an activity
    without a row runs on the defaults."""

    __tablename__ = "risk_policy"

    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), primary_key=True
    )
    limits: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[int | None] = mapped_column(BigId)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Challenge(Base):
    """A captcha a member was asked to solve. The id is the nonce of a signed challenge
    token; the row exists once the member fetched the picture. Only the answer's keyed
    hash is kept; a challenge is used once, expires, and allows a few wrong answers."""

    __tablename__ = "risk_challenge"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    membership_id: Mapped[int] = mapped_column(BigId, index=True)
    provider: Mapped[str] = mapped_column(String(32))
    answer_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    renders: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    solved_at: Mapped[datetime | None]


class FlagKind(StrEnum):
    NETWORK_ACCOUNTS = "network_accounts"  # many accounts from one network
    FRESH_ACCOUNTS = "fresh_accounts"  # many actions from accounts verified lately
    TARGET_JUMP = "target_jump"  # a target's rate (a candidate's votes) jumped


class FlagStatus(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"  # the operator agrees: the subject stays challenged
    DISMISSED = "dismissed"  # the operator knows it (a company's NAT): let through


class Flag(Base):
    """An anomaly for operators to review, with the evidence that raised it. ``dedupe``
    makes raising idempotent: one flag per subject and window however many processes see
    the threshold crossed."""

    __tablename__ = "risk_flag"
    __table_args__ = (Index("ix_risk_flag_org_status", "org_id", "status"),)

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    activity_id: Mapped[int | None] = mapped_column(BigId, index=True)
    kind: Mapped[FlagKind] = mapped_column(String(24))
    subject: Mapped[str] = mapped_column(String(160))
    dedupe: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[FlagStatus] = mapped_column(String(16), default=FlagStatus.OPEN)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    raised_at: Mapped[datetime] = mapped_column(default=now)
    reviewed_by: Mapped[int | None] = mapped_column(BigId)
    reviewed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(500))

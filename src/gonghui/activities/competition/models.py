"""A competition's entries (who registered, their form record and files), judging panels,
judges' conflicts and scores, and the frozen results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Entry(Base):
    """One registration: an individual, or a team under its captain. Judges know it only by
    ``code``; ``org_id`` is the captain's union (what the results name)."""

    __tablename__ = "activities_competition_entry"
    __table_args__ = (
        UniqueConstraint("activity_id", "code"),
        UniqueConstraint("activity_id", "invite_code"),
    )

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), index=True
    )
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    captain_membership_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_membership.id"))
    team_name: Mapped[str | None] = mapped_column(String(100))
    # A team's members so far (captain included): raised by a conditional update when a
    # teammate joins with the invite code, so no team ever passes the maximum. A team
    # below the minimum is still forming and is not handed to a panel.
    team_size: Mapped[int] = mapped_column(default=1, server_default="1")
    # What teammates type to join a team registered with room left (None: individuals).
    invite_code: Mapped[str | None] = mapped_column(String(16))
    # The pseudonymous code judges see ("E-7K3QX9"): random, so it tells nothing of order.
    code: Mapped[str] = mapped_column(String(16))
    # The registration form's answers: this record of the form table.
    record_id: Mapped[int] = mapped_column(BigId)
    file_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    submitted_at: Mapped[datetime | None]
    panel_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("activities_competition_panel.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=now)


class EntryMember(Base):
    """Who is in an entry; the unique constraint is "one registration per member per
    competition", whoever registered them."""

    __tablename__ = "activities_competition_entry_member"
    __table_args__ = (UniqueConstraint("activity_id", "membership_id"),)

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    entry_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_competition_entry.id"), index=True
    )
    membership_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_membership.id"))
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))


class Panel(Base):
    """A judging panel: its judges score its entries until it closes."""

    __tablename__ = "activities_competition_panel"

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), index=True
    )
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    name: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)


class PanelJudge(Base):
    __tablename__ = "activities_competition_judge"
    __table_args__ = (UniqueConstraint("panel_id", "user_id"),)

    id: Mapped[IdPk]
    panel_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_competition_panel.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)


class DeclaredConflict(Base):
    """A judge's own word that they may not score an entry (on top of the org rule)."""

    __tablename__ = "activities_competition_conflict"
    __table_args__ = (UniqueConstraint("entry_id", "user_id"),)

    id: Mapped[IdPk]
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_competition_entry.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    declared_at: Mapped[datetime] = mapped_column(default=now)


class Score(Base):
    """One judge's scores of one entry, criterion key → points."""

    __tablename__ = "activities_competition_score"
    __table_args__ = (UniqueConstraint("entry_id", "judge_user_id"),)

    id: Mapped[IdPk]
    panel_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_competition_panel.id"), index=True
    )
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_competition_entry.id"))
    judge_user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Result(Base):
    """A published, frozen ranking line: written once when the operator publishes, never
    updated (the unique constraint refuses a second publication)."""

    __tablename__ = "activities_competition_result"
    __table_args__ = (UniqueConstraint("activity_id", "entry_id"),)

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), index=True
    )
    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_competition_entry.id"))
    rank: Mapped[int]
    # The normalised score in millionths (see results.py), so the frozen figure is exact.
    score_micros: Mapped[int]
    judges: Mapped[int]
    published_at: Mapped[datetime] = mapped_column(default=now)

"""A praise vote's candidates, its ordered vote log and its frozen, published result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class CandidateStatus(StrEnum):
    NOMINATED = "nominated"  # waiting for the organiser's review
    APPROVED = "approved"  # votable
    REJECTED = "rejected"


class Candidate(Base):
    """A person put forward by a union (``org_id``, the nominating org) for a vote; or a
    competition's ranked entry put to its public vote (``entry_id``, once per vote)."""

    __tablename__ = "activities_vote_candidate"
    __table_args__ = (UniqueConstraint("activity_id", "entry_id"),)

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), index=True
    )
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    profile: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32), default="")
    # Files of the file store (``baas_file`` ids): a photo and a video.
    photo_file_id: Mapped[int | None] = mapped_column(BigId)
    video_file_id: Mapped[int | None] = mapped_column(BigId)
    entry_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("activities_competition_entry.id")
    )
    status: Mapped[CandidateStatus] = mapped_column(String(16), default=CandidateStatus.NOMINATED)
    review_reason: Mapped[str | None] = mapped_column(String(200))
    # Valid (unvoided) votes: only ever ``votes = votes + k`` by the hot writer and
    # ``votes - 1`` by a void, in the transaction that writes or voids the log rows.
    votes: Mapped[int] = mapped_column(BigInteger, default=0)
    nominated_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    reviewed_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Vote(Base):
    """One vote: a row of the ordered log (by id) the result's hash covers. A voided vote
    stays in the log, marked, and counts for no one."""

    __tablename__ = "activities_vote"
    __table_args__ = (
        Index("ix_activities_vote_activity_id_id", "activity_id", "id"),
        # The console home counts today's votes with one range.
        Index("ix_activities_vote_activity_at", "activity_id", "at"),
    )

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    candidate_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_vote_candidate.id"))
    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), index=True
    )
    # The member's day (display time zone) the vote counted against.
    day: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(default=now)
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    void_reason: Mapped[str | None] = mapped_column(String(200))


class VoteResult(Base):
    """The frozen result of an ended vote, written once and never changed."""

    __tablename__ = "activities_vote_result"

    activity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("activities_activity.id"), primary_key=True
    )
    frozen_at: Mapped[datetime] = mapped_column(default=now)
    frozen_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    # Entries in the log, of which voided; valid votes per candidate (id, name, votes).
    entries: Mapped[int] = mapped_column(BigInteger)
    voided: Mapped[int] = mapped_column(BigInteger)
    totals: Mapped[list[Any]] = mapped_column(JSON)
    log_hash: Mapped[str] = mapped_column(String(64))

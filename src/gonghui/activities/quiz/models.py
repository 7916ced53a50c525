"""A per-org question bank and members' quiz attempts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class QuestionKind(StrEnum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    TRUE_FALSE = "true_false"


class Question(Base):
    __tablename__ = "activities_quiz_question"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    kind: Mapped[QuestionKind] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any]] = mapped_column(JSON)
    # Indexes into ``options``; never sent to a member before their attempt is submitted.
    answer: Mapped[list[Any]] = mapped_column(JSON)
    explanation: Mapped[str] = mapped_column(Text, default="")
    tag: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)


class Attempt(Base):
    __tablename__ = "activities_quiz_attempt"
    __table_args__ = (
        Index("ix_activities_quiz_attempt_board", "activity_id", "score", "duration_ms"),
        # The console home counts today's attempts with one range.
        Index("ix_activities_quiz_attempt_activity_started", "activity_id", "started_at"),
    )

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    membership_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("members_membership.id"), index=True
    )
    question_ids: Mapped[list[Any]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=now)
    deadline: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    score: Mapped[int | None]
    duration_ms: Mapped[int | None]
    passed: Mapped[bool | None]

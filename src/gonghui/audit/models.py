"""The append-only audit log. Update and delete are refused by database triggers
(created in the migration), not only by the absence of an API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class AuditEntry(Base):
    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_actor_at", "actor_user_id", "at"),
        Index("ix_audit_entry_subject", "subject_type", "subject_id"),
        Index("ix_audit_entry_action_at", "action", "at"),
    )

    id: Mapped[IdPk]
    at: Mapped[datetime] = mapped_column(default=now, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(BigId)
    org_id: Mapped[int | None] = mapped_column(BigId, index=True)
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    field: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))

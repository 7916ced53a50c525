from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_user_id: int | None
    org_id: int | None
    action: str
    subject_type: str | None
    subject_id: str | None
    field: str | None
    reason: str | None
    details: dict[str, Any] | None
    ip: str | None
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    next_before_id: int | None

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gonghui.baas.triggers.models import TargetKind, TriggerEvent
from gonghui.types import Count


class TriggerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=63)
    event: TriggerEvent
    target_kind: TargetKind
    table_name: str | None = None
    filter: dict[str, Any] | None = None
    cron: str | None = Field(default=None, max_length=100)
    function_name: str | None = None
    webhook_url: str | None = Field(default=None, max_length=500)
    max_attempts: Count = 8


class TriggerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    event: str
    target_kind: str
    table_name: str | None
    filter: dict[str, Any] | None
    cron: str | None
    next_run_at: datetime | None
    function_name: str | None
    webhook_url: str | None
    max_attempts: int
    enabled: bool
    created_at: datetime


class TriggerCreated(TriggerRead):
    # Shown once: signs outgoing webhooks, or must sign calls to an incoming one.
    secret: str | None
    incoming_url: str | None


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    trigger_id: int
    event: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryDetail(DeliveryRead):
    attempt_log: list[AttemptRead]


class Accepted(BaseModel):
    event_id: str

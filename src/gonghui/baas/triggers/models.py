"""Triggers, and the events they turn into deliveries.

A delivery row (and its task, :mod:`gonghui.tasks`) is written in the same transaction as
the change that caused it: a rolled-back change leaves no delivery, a committed one always
has one, and it survives a restart until it is delivered or dead-lettered.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class TriggerEvent(StrEnum):
    """Record events of the app's own tables, the union's events (the values of
    :class:`gonghui.hooks.OrgEvent`), cron ticks and incoming webhooks."""

    RECORD_CREATED = "record.created"
    RECORD_UPDATED = "record.updated"
    RECORD_DELETED = "record.deleted"
    PARTICIPATED = "activity.participated"
    PRIZE_WON = "activity.prize_won"
    VERIFICATION_APPROVED = "members.verification_approved"
    SCHEDULE = "schedule"
    INCOMING = "incoming"


RECORD_EVENTS = frozenset(
    {TriggerEvent.RECORD_CREATED, TriggerEvent.RECORD_UPDATED, TriggerEvent.RECORD_DELETED}
)


class TargetKind(StrEnum):
    FUNCTION = "function"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Trigger(Base):
    __tablename__ = "baas_trigger"

    id: Mapped[IdPk]
    app_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_app.id"), index=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    name: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(40))
    table_name: Mapped[str | None] = mapped_column(String(63))
    # A records ``where`` the record must match (record events only).
    filter: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cron: Mapped[str | None] = mapped_column(String(100))
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    target_kind: Mapped[str] = mapped_column(String(16))
    function_name: Mapped[str | None] = mapped_column(String(63))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    # AES-GCM sealed: the key outgoing webhooks are signed with, or incoming ones checked by.
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    max_attempts: Mapped[int] = mapped_column(default=8)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Delivery(Base):
    __tablename__ = "baas_delivery"

    id: Mapped[IdPk]
    # What receivers de-duplicate by: delivery is at least once.
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Its subscriber: an app's trigger, or an OAuth client's webhook endpoint
    # (gonghui.openplatform.webhooks); exactly one is set.
    trigger_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("baas_trigger.id"), index=True)
    app_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("baas_app.id"), index=True)
    endpoint_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("openplatform_webhook_endpoint.id"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    # When a pending delivery is tried next (its task's retry time).
    next_attempt_at: Mapped[datetime] = mapped_column(default=now)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=now)
    delivered_at: Mapped[datetime | None]
    # The request that stored the event (None: a cron tick): its deliveries' logs and
    # function invocations carry it.
    request_id: Mapped[str | None] = mapped_column(String(64))


class DeliveryAttempt(Base):
    __tablename__ = "baas_delivery_attempt"

    id: Mapped[IdPk]
    delivery_id: Mapped[int] = mapped_column(BigId, ForeignKey("baas_delivery.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=now)
    ok: Mapped[bool] = mapped_column(default=False)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(default=0.0)

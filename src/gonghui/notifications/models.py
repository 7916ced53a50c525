"""Notifications' tables: templates and settings per org, the inbox (one row per
notification), each channel's delivery, WeChat one-time subscriptions, the daily counts
the caps are kept by, activity reminders and broadcasts."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Event(StrEnum):
    PRIZE_WON = "prize_won"
    VERIFICATION_APPROVED = "verification_approved"
    VERIFICATION_REJECTED = "verification_rejected"
    VOUCHER_ARRIVED = "voucher_arrived"
    ORDER_SHIPPED = "order_shipped"
    ACTIVITY_STARTING = "activity_starting"
    BROADCAST = "broadcast"


class Channel(StrEnum):
    INBOX = "inbox"
    SMS = "sms"
    WECHAT = "wechat"  # the mini program's subscribe messages
    WECHAT_OA = "wechat_oa"  # the official account's template messages, to its followers


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    # Claimed (counted, a WeChat acceptance taken) and handed to the provider: the outcome
    # is written once the call returns (channels.deliver).
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


# Why a delivery was skipped or deferred (a failure's reason is the provider's error code).
REASONS = (
    "quiet_hours",
    "daily_cap",
    "no_phone",
    "no_wechat",
    "no_subscription",
    "no_template",
    "interrupted",
)


class BroadcastStatus(StrEnum):
    PENDING = "pending"  # written, waiting for a second staff member's review
    SENDING = "sending"  # approved: batches go out at the bounded rate
    SENT = "sent"
    REJECTED = "rejected"


class Template(Base):
    """An org's text for one event on one channel; its subtree inherits it unless an org
    below has its own. ``org_id`` None is never stored: the platform's defaults live in
    code (:mod:`gonghui.notifications.templates`)."""

    __tablename__ = "notifications_template"
    __table_args__ = (UniqueConstraint("org_id", "event", "channel"),)

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    event: Mapped[Event] = mapped_column(String(32))
    channel: Mapped[Channel] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    title: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[str] = mapped_column(String(500), default="")
    # WeChat: the subscribe-message template id and the mini program page it opens.
    wechat_template_id: Mapped[str] = mapped_column(String(64), default="")
    wechat_page: Mapped[str] = mapped_column(String(200), default="")
    updated_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    updated_at: Mapped[datetime] = mapped_column(default=now)


class OrgSettings(Base):
    """An org's delivery rules, inherited by its subtree like templates: quiet hours (local
    minutes of the day, start to end, may wrap midnight) and the daily cap per member of
    messages that leave the platform (SMS, WeChat; the inbox is never capped)."""

    __tablename__ = "notifications_org_settings"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), unique=True)
    quiet_start_minute: Mapped[int | None]
    quiet_end_minute: Mapped[int | None]
    daily_cap: Mapped[int] = mapped_column(default=5)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Notification(Base):
    """One message to one user: what their inbox shows."""

    __tablename__ = "notifications_notification"
    __table_args__ = (Index("ix_notifications_notification_user_id_id", "user_id", "id"),)

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    event: Mapped[Event] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(String(500))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    urgent: Mapped[bool] = mapped_column(default=False)
    broadcast_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("notifications_broadcast.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=now)
    read_at: Mapped[datetime | None]


class Delivery(Base):
    """A notification on one channel, and what became of it."""

    __tablename__ = "notifications_delivery"
    __table_args__ = (UniqueConstraint("notification_id", "channel"),)

    id: Mapped[IdPk]
    notification_id: Mapped[int] = mapped_column(BigId, ForeignKey("notifications_notification.id"))
    channel: Mapped[Channel] = mapped_column(String(16))
    status: Mapped[DeliveryStatus] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    send_after: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Subscription(Base):
    """A user's acceptance of one WeChat subscribe-message template (``wx.requestSubscribe
    Message``): one send allowed, consumed by it."""

    __tablename__ = "notifications_subscription"
    __table_args__ = (
        Index("ix_notifications_subscription_user_template", "user_id", "template_id"),
    )

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    template_id: Mapped[str] = mapped_column(String(64))
    accepted_at: Mapped[datetime] = mapped_column(default=now)
    consumed_at: Mapped[datetime | None]
    delivery_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("notifications_delivery.id"))


class DailyCount(Base):
    """Messages sent to a user off the platform on one local day (the cap's counter)."""

    __tablename__ = "notifications_daily_count"
    __table_args__ = (UniqueConstraint("user_id", "day"),)

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    day: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column(default=0)


class Reminder(Base):
    """A member asked to be told when a scheduled activity starts."""

    __tablename__ = "notifications_reminder"
    __table_args__ = (UniqueConstraint("activity_id", "user_id"),)

    id: Mapped[IdPk]
    activity_id: Mapped[int] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    sent_at: Mapped[datetime | None]


class Broadcast(Base):
    """A message from staff to every member of an org's subtree: approved by a second
    staff member before it goes, then sent in batches at a bounded rate."""

    __tablename__ = "notifications_broadcast"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(String(500))
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[BroadcastStatus] = mapped_column(String(16), default=BroadcastStatus.PENDING)
    created_by: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    reviewed_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    review_note: Mapped[str] = mapped_column(String(200), default="")
    total: Mapped[int] = mapped_column(default=0)
    sent_count: Mapped[int] = mapped_column(default=0)
    # The last membership id sent to: the next batch starts after it.
    cursor: Mapped[int] = mapped_column(BigId, default=0)
    created_at: Mapped[datetime] = mapped_column(default=now)
    reviewed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

"""Notifications' API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gonghui.notifications.models import BroadcastStatus, Channel, DeliveryStatus, Event
from gonghui.types import Id


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: Channel
    status: DeliveryStatus
    reason: str
    send_after: datetime | None
    updated_at: datetime


class NotificationRead(BaseModel):
    id: int
    org_id: int
    event: Event
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None
    deliveries: list[DeliveryRead]


class InboxRead(BaseModel):
    items: list[NotificationRead]
    unread: int
    next_before_id: int | None


class MarkedRead(BaseModel):
    marked: int


class SubscriptionsAccept(BaseModel):
    """The template ids the member accepted in ``wx.requestSubscribeMessage``."""

    template_ids: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(
        min_length=1, max_length=3
    )


class SubscriptionsRead(BaseModel):
    accepted: int


class ReminderRead(BaseModel):
    activity_id: int
    reminded: bool


class TemplateRead(BaseModel):
    event: Event
    channel: Channel
    enabled: bool
    title: str
    body: str
    wechat_template_id: str
    wechat_page: str
    org_id: int | None = Field(description="whose template applies (null: the platform's)")
    variables: list[str]


class TemplateWrite(BaseModel):
    enabled: bool = True
    title: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=500)
    wechat_template_id: str = Field(default="", max_length=64, pattern="^[A-Za-z0-9_-]*$")
    wechat_page: str = Field(default="", max_length=200)


class RulesRead(BaseModel):
    quiet_start_minute: int | None
    quiet_end_minute: int | None
    daily_cap: int
    org_id: int | None = Field(description="whose rules apply (null: the platform's)")


class RulesWrite(BaseModel):
    quiet_start_minute: int | None = Field(default=None, ge=0, le=1439)
    quiet_end_minute: int | None = Field(default=None, ge=0, le=1439)
    daily_cap: int = Field(default=5, ge=0, le=100)


class LogRowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delivery_id: int
    notification_id: int
    org_id: int
    user_id: int
    event: str
    channel: str
    status: str
    reason: str
    broadcast_id: int | None
    created_at: datetime
    updated_at: datetime


class BroadcastCreate(BaseModel):
    org_id: Id
    title: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=500)
    channels: list[Channel] = Field(default_factory=list, max_length=3)


class BroadcastReview(BaseModel):
    note: str = Field(default="", max_length=200)


class BroadcastRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    title: str
    body: str
    channels: list[str]
    status: BroadcastStatus
    created_by: int
    reviewed_by: int | None
    review_note: str
    total: int
    sent_count: int
    created_at: datetime
    reviewed_at: datetime | None
    finished_at: datetime | None

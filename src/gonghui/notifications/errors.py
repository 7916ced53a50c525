"""Notifications' error codes."""

from __future__ import annotations

from enum import StrEnum


class NotificationsError(StrEnum):
    NOT_FOUND = "notifications.not_found"
    BAD_TEMPLATE = "notifications.bad_template"
    BAD_SETTINGS = "notifications.bad_settings"
    FORBIDDEN = "notifications.forbidden"
    SAME_REVIEWER = "notifications.same_reviewer"
    NOT_PENDING = "notifications.not_pending"
    NOT_SCHEDULED = "notifications.not_scheduled"
    TOO_MANY_SUBSCRIPTIONS = "notifications.too_many_subscriptions"

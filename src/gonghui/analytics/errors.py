"""The analytics domain's error codes."""

from enum import StrEnum


class AnalyticsError(StrEnum):
    BAD_PERIOD = "analytics.bad_period"
    BAD_SET = "analytics.bad_set"
    FORBIDDEN = "analytics.forbidden"
    FULL_ADMIN_ONLY = "analytics.full_refresh_admin_only"
    REFRESH_THROTTLED = "analytics.refresh_throttled"

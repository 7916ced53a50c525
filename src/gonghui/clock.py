"""Time: UTC in storage, Asia/Shanghai (configurable) for display and per-day limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gonghui.settings import get_settings

# Tests move the clock forward instead of sleeping; production never touches it.
_offset = timedelta(0)


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC) + _offset


def advance(delta: timedelta) -> None:
    """Move the server clock forward (tests only)."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)


def display_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().display_timezone)


def local_day(instant: datetime | None = None) -> date:
    """The calendar day of ``instant`` in the display zone: what "per day" means."""
    return (instant or now()).astimezone(display_zone()).date()


def start_of_local_day(instant: datetime | None = None) -> datetime:
    return day_start(local_day(instant))


def day_start(day: date) -> datetime:
    """The instant the calendar ``day`` begins in the display zone."""
    return datetime(day.year, day.month, day.day, tzinfo=display_zone()).astimezone(UTC)

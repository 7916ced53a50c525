"""Rate limits: how many times a key (an account, an address, an ID number) may act in a
window, shared by every domain that throttles something.

A key counts hits in a fixed window that opens at its first hit and lasts ``window_s``
seconds (Redis's ``INCR`` then ``EXPIRE``); the window's end is the Retry-After a refused
caller gets. Each hit is one atomic ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in a
short transaction of its own, so an attempt still counts when the request that made it
rolls back. On SQLite that transaction is a writer: call :func:`hit` before the caller's own
unit of work has written (or read through a write session), or it waits for that one.
Housekeeping deletes windows that have ended (:func:`purge_expired`).

Only :func:`hit`, :func:`check`, :func:`clear` and :func:`purge_expired` touch storage, so
a Redis store can replace the table without changing a caller.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import String, case, delete, literal, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gonghui import clock
from gonghui.db import Base, UTCDateTime, get_engine, read_sync, rowcount, upsert_insert

KEY_MAX = 200


class RateCounter(Base):
    """One key's hits in its current window."""

    __tablename__ = "ratelimit_counter"

    key: Mapped[str] = mapped_column(String(KEY_MAX), primary_key=True)
    count: Mapped[int]
    window_ends_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True)
class Decision:
    """``count`` hits so far in the window that ends in ``retry_after_s`` seconds;
    ``allowed`` when that is within the limit."""

    allowed: bool
    count: int
    limit: int
    retry_after_s: int


def _seconds_until(end: datetime, at: datetime) -> int:
    return max(1, math.ceil((end - at).total_seconds()))


def hit(key: str, *, limit: int, window_s: int) -> Decision:
    """Count one hit of ``key``; allowed while the window holds at most ``limit`` hits."""
    if len(key) > KEY_MAX:
        raise ValueError(f"rate-limit key longer than {KEY_MAX} characters")
    at = clock.now()
    table = RateCounter.__table__
    engine = get_engine()
    insert = upsert_insert(engine.dialect.name)(table)
    ended = table.c.window_ends_at <= literal(at, UTCDateTime())
    stmt = (
        insert.values(key=key, count=1, window_ends_at=at + timedelta(seconds=window_s))
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((ended, 1), else_=table.c.count + 1),
                "window_ends_at": case(
                    (ended, insert.excluded.window_ends_at), else_=table.c.window_ends_at
                ),
            },
        )
        .returning(table.c.count, table.c.window_ends_at)
    )
    with engine.begin() as connection:
        count, ends = connection.execute(stmt).one()
    return Decision(count <= limit, count, limit, _seconds_until(ends, at))


def check(key: str, *, limit: int) -> Decision:
    """Whether ``key`` is within ``limit`` now, without counting a hit."""
    at = clock.now()
    stmt = select(RateCounter.count, RateCounter.window_ends_at).where(
        RateCounter.key == key, RateCounter.window_ends_at > at
    )
    # A read transaction: on SQLite it takes no write lock.
    row = read_sync(lambda connection: connection.execute(stmt).one_or_none())
    if row is None:
        return Decision(True, 0, limit, 0)
    count, ends = row
    return Decision(count <= limit, count, limit, _seconds_until(ends, at))


def clear(key: str) -> None:
    """Forget ``key``'s window (a successful sign-in clears its failures)."""
    with get_engine().begin() as connection:
        connection.execute(delete(RateCounter).where(RateCounter.key == key))


def purge_expired(session: Session, *, at: datetime | None = None) -> int:
    """Delete the windows that have ended; returns how many."""
    at = at or clock.now()
    return rowcount(session.execute(delete(RateCounter).where(RateCounter.window_ends_at <= at)))


def address_bucket(ip: str | None) -> str | None:
    """The address a per-address limit counts: IPv4 as is, IPv6 by its /64 (one host
    usually holds a whole /64), an IPv4-mapped IPv6 address as its IPv4 address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)

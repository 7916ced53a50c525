"""Rate limits: how many times a key (an account, an address, an ID number) may act in a
window, shared by every domain that throttles something and by every server process.

A key counts hits in a fixed window that opens at its first hit and lasts ``window_s``
seconds; the window's end is the Retry-After a refused caller gets. Windows are timed by
:mod:`gonghui.clock` whichever store counts. Only :func:`hit`, :func:`check`, :func:`clear`
and :func:`purge_expired` touch storage, and callers do not know which store it is:

- The database (the default): each hit is one atomic ``INSERT ... ON CONFLICT DO UPDATE
  ... RETURNING`` in a short transaction of its own, so an attempt still counts when the
  request that made it rolls back. On SQLite that transaction is a writer: call :func:`hit`
  before the caller's own unit of work has written (or read through a write session), or
  it waits for that one. Housekeeping deletes windows that have ended.
- Redis, when ``GONGHUI_REDIS_URL`` is set: each hit is one Lua script (atomic on the
  server) over a hash of the count and the window's end; the key expires by itself a
  minute after its window. No database write at all. When Redis cannot be reached the
  limits fail closed: :func:`hit` and :func:`check` raise :class:`ServiceUnavailable`
  (503, ``ratelimit.unavailable``), never answer "allowed" unchecked.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import redis
from redis.commands.core import Script
from sqlalchemy import String, case, delete, literal, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from gonghui import clock, invalidation, redis_conn
from gonghui.db import Base, UTCDateTime, get_engine, read_sync, rowcount, upsert_insert
from gonghui.errors import ServiceUnavailable

log = logging.getLogger(__name__)

KEY_MAX = 200
UNAVAILABLE = "ratelimit.unavailable"
# A refused caller may try again this soon (Redis restarting, a network blip).
UNAVAILABLE_RETRY_AFTER_S = 5
# The last addresses whose bucket a process keeps parsed (risk control keeps as many
# networks): every member action asks for its caller's.
ADDRESSES_KEPT = 4096


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
    if redis_conn.configured():
        count, ends = _redis_hit(key, at, window_s)
    else:
        count, ends = _db_hit(key, at, window_s)
    return Decision(count <= limit, count, limit, _seconds_until(ends, at))


@dataclass(frozen=True)
class Grant:
    """Of ``n`` hits asked for, ``granted`` fit within the limit of the window that ends
    at ``window_ends_at``."""

    granted: int
    window_ends_at: datetime


def take(key: str, *, n: int, limit: int, window_s: float) -> Grant:
    """Count ``n`` hits of ``key`` at once (a pace's block, :mod:`gonghui.pacing`): as many
    of them as the window still held are granted, the rest count but are not granted."""
    if len(key) > KEY_MAX:
        raise ValueError(f"rate-limit key longer than {KEY_MAX} characters")
    at = clock.now()
    if redis_conn.configured():
        count, ends = _redis_hit(key, at, window_s, n)
    else:
        count, ends = _db_hit(key, at, window_s, n)
    return Grant(max(0, min(n, limit - (count - n))), ends)


def _db_hit(key: str, at: datetime, window_s: float, n: int = 1) -> tuple[int, datetime]:
    table = RateCounter.__table__
    engine = get_engine()
    insert = upsert_insert(engine.dialect.name)(table)
    ended = table.c.window_ends_at <= literal(at, UTCDateTime())
    stmt = (
        insert.values(key=key, count=n, window_ends_at=at + timedelta(seconds=window_s))
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "count": case((ended, n), else_=table.c.count + n),
                "window_ends_at": case(
                    (ended, insert.excluded.window_ends_at), else_=table.c.window_ends_at
                ),
            },
        )
        .returning(table.c.count, table.c.window_ends_at)
    )
    with engine.begin() as connection:
        count, ends = connection.execute(stmt).one()
    return count, ends


def check(key: str, *, limit: int) -> Decision:
    """Whether ``key`` is within ``limit`` now, without counting a hit."""
    at = clock.now()
    row = _redis_read(key, at) if redis_conn.configured() else _db_read(key, at)
    if row is None:
        return Decision(True, 0, limit, 0)
    count, ends = row
    return Decision(count <= limit, count, limit, _seconds_until(ends, at))


def _db_read(key: str, at: datetime) -> tuple[int, datetime] | None:
    stmt = select(RateCounter.count, RateCounter.window_ends_at).where(
        RateCounter.key == key, RateCounter.window_ends_at > at
    )
    # A read transaction: on SQLite it takes no write lock.
    row = read_sync(lambda connection: connection.execute(stmt).one_or_none())
    return None if row is None else (row[0], row[1])


def clear(key: str) -> None:
    """Forget ``key``'s window (a successful sign-in clears its failures). With Redis
    unreachable the window stays, which only keeps the limit stricter: logged, not raised
    (the caller's own work has succeeded, often committed)."""
    if not redis_conn.configured():
        with get_engine().begin() as connection:
            connection.execute(delete(RateCounter).where(RateCounter.key == key))
        return
    try:
        redis_conn.client().delete(_redis_key(key))
    except redis_conn.Unavailable:
        log.warning("rate limit %s not cleared: Redis unreachable", key, exc_info=True)


# KEYS[1]: the key's hash {c: count, e: window end}; ARGV: now and the window (ms, by the
# caller's clock), and the hits to count. Opens a window when there is none or it has
# ended, else counts the hits.
_HIT = """
local now, window, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'c', 'e')
local count, ends = tonumber(state[1]), tonumber(state[2])
if count == nil or ends == nil or ends <= now then
  count, ends = n, now + window
  redis.call('HSET', KEYS[1], 'c', count, 'e', ends)
else
  count = redis.call('HINCRBY', KEYS[1], 'c', n)
end
redis.call('PEXPIRE', KEYS[1], math.max(ends - now, 0) + 60000)
return {count, ends}
"""


@lru_cache(maxsize=1)
def _hit_script(client: redis.Redis) -> Script:
    return client.register_script(_HIT)


def _redis_key(key: str) -> str:
    return f"{redis_conn.namespace()}:rl:{key}"


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        UNAVAILABLE,
        "rate limiting is unavailable, so this request cannot be checked; try again shortly",
        retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
    )


def _redis_hit(key: str, at: datetime, window_s: float, n: int = 1) -> tuple[int, datetime]:
    client = redis_conn.client()
    try:
        # EVALSHA, loading the script again when the server has lost it (a restart).
        count, ends = _hit_script(client)(
            keys=[_redis_key(key)], args=[_ms(at), round(window_s * 1000), n]
        )
    except redis_conn.Unavailable as exc:
        log.warning("rate limit %s refused: Redis unreachable (%s)", key, exc)
        raise _unavailable() from exc
    return int(count), _from_ms(int(ends))


def _redis_read(key: str, at: datetime) -> tuple[int, datetime] | None:
    try:
        count, ends = redis_conn.client().hmget(_redis_key(key), ["c", "e"])
    except redis_conn.Unavailable as exc:
        log.warning("rate limit %s refused: Redis unreachable (%s)", key, exc)
        raise _unavailable() from exc
    if count is None or ends is None or int(ends) <= _ms(at):
        return None
    return int(count), _from_ms(int(ends))


def purge_expired(session: Session, *, at: datetime | None = None) -> int:
    """Delete the windows that have ended; returns how many. (Redis expires its own.)"""
    at = at or clock.now()
    return rowcount(session.execute(delete(RateCounter).where(RateCounter.window_ends_at <= at)))


@lru_cache(maxsize=ADDRESSES_KEPT)
def address_bucket(ip: str | None) -> str | None:
    """The address a per-address limit counts: IPv4 as is, IPv6 by its /64 (one host
    usually holds a whole /64), an IPv4-mapped IPv6 address as its IPv4 address. Kept for
    the last :data:`ADDRESSES_KEPT` addresses."""
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


@dataclass(frozen=True)
class Window:
    """One key of a :func:`tally`: ``add`` hits (0: only read) in a fixed window of
    ``window_s`` seconds; with ``distinct``, the window counts distinct values instead
    (how many accounts one network used), ``distinct`` being this hit's value."""

    key: str
    window_s: int
    add: int = 1
    distinct: str | None = None


# KEYS: one per window; ARGV: now (ms), then per key its window (ms), its add, and its
# distinct value ("" for a plain count). One round trip for every key of a tally.
_TALLY = """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local window, add, value = tonumber(ARGV[i*3-1]), tonumber(ARGV[i*3]), ARGV[i*3+1]
  if value ~= "" then
    if redis.call('SADD', key, value) == 1 and redis.call('SCARD', key) == 1 then
      redis.call('PEXPIRE', key, window)
    end
    out[i] = redis.call('SCARD', key)
  else
    local state = redis.call('HMGET', key, 'c', 'e')
    local count, ends = tonumber(state[1]), tonumber(state[2])
    if count == nil or ends == nil or ends <= now then
      if add > 0 then
        redis.call('HSET', key, 'c', add, 'e', now + window)
        redis.call('PEXPIRE', key, window + 60000)
      end
      out[i] = add
    else
      if add > 0 then count = redis.call('HINCRBY', key, 'c', add) end
      out[i] = count
    end
  end
end
return out
"""


@lru_cache(maxsize=1)
def _tally_script(client: redis.Redis) -> Script:
    return client.register_script(_TALLY)


class _ProcessTally:
    """Windows counted in this process's memory: what :func:`tally` uses without Redis."""

    MAX_KEYS = 200_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # key -> (window end, count, distinct values or None)
        self._windows: dict[str, tuple[float, int, set[str] | None]] = {}

    def count(self, windows: Sequence[Window], at: float) -> list[int]:
        out = []
        with self._lock:
            if len(self._windows) >= self.MAX_KEYS:
                self._windows = {k: w for k, w in self._windows.items() if w[0] > at}
                if len(self._windows) >= self.MAX_KEYS:
                    self._windows.clear()
            for w in windows:
                state = self._windows.get(w.key)
                if state is None or state[0] <= at:
                    if w.add <= 0 and w.distinct is None:
                        out.append(0)
                        continue
                    state = (at + w.window_s, 0, set() if w.distinct is not None else None)
                ends, count, values = state
                if values is not None and w.distinct is not None:
                    values.add(w.distinct)
                    count = len(values)
                else:
                    count += w.add
                self._windows[w.key] = (ends, count, values)
                out.append(count)
        return out

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


_process_tally = _ProcessTally()
# Tests start each from nothing: ``invalidation.forget_all`` drops these windows too.
invalidation.subscribe(
    "ratelimit.tally", on_change=lambda _change: None, forget=_process_tally.clear
)


def tally(windows: Sequence[Window]) -> list[int]:
    """Count hits of several windows at once and return each window's count: one Lua call
    when Redis is configured; otherwise this process's memory, not the database.

    For signals on hot paths (risk control), where a database write per request would cost
    more than the action it guards: without Redis each server process counts what it
    serves, so a client whose requests are spread over N processes is seen at about 1/N of
    its rate. Limits that must hold exactly across processes use :func:`hit`. With Redis
    unreachable this fails closed like :func:`hit` (``ratelimit.unavailable``)."""
    for w in windows:
        if len(w.key) > KEY_MAX:
            raise ValueError(f"rate-limit key longer than {KEY_MAX} characters")
    at = clock.now()
    if not redis_conn.configured():
        return _process_tally.count(windows, at.timestamp())
    args: list[int | str] = [_ms(at)]
    for w in windows:
        args += [w.window_s * 1000, w.add, w.distinct or ""]
    client = redis_conn.client()
    try:
        counts = _tally_script(client)(keys=[_redis_key(w.key) for w in windows], args=args)
    except redis_conn.Unavailable as exc:
        log.warning("risk tally refused: Redis unreachable (%s)", exc)
        raise _unavailable() from exc
    return [int(c) for c in counts]


def forget_process_tally() -> None:
    """Drop the in-process windows (tests)."""
    _process_tally.clear()

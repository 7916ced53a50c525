"""Every call of a client to the open APIs: an access log operators query, and calls
counted per client per day.

A call is appended to this process's buffer and written with the others once a second
(``GONGHUI_OPEN_API_USAGE_FLUSH_S``) by a background thread: one insert of the log rows,
one upsert per client and day. The reads it records are answered from memory
(``resource``); a database write per read would queue every one of them for SQLite's one
writer. What a process has buffered
when it dies (``kill -9``) is lost: at most a second of log and counts, never anything a
member or an org owns. A flush that fails keeps its entries for the next (up to
:data:`BUFFER_MAX`, beyond which the oldest go and are counted in the log as dropped).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.clock import local_day, now
from gonghui.db import get_engine, unit_of_work, upsert_insert
from gonghui.openplatform import clients
from gonghui.openplatform.models import AccessLogEntry, UsageDay
from gonghui.settings import get_settings
from gonghui.tenancy import Actor

log = logging.getLogger(__name__)

BUFFER_MAX = 100_000
KEEP_DAYS = 30


@dataclass(frozen=True)
class Call:
    client_pk: int
    at: datetime
    method: str
    path: str
    status: int
    ms: int


class _Buffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: deque[Call] = deque()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def add(self, call: Call) -> None:
        with self._lock:
            if len(self._calls) >= BUFFER_MAX:
                self._calls.popleft()
                self.dropped += 1
            self._calls.append(call)
            every = get_settings().open_api_usage_flush_s
            if every > 0 and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, args=(every,), name="open-api-usage", daemon=True
                )
                self._thread.start()

    def take(self) -> list[Call]:
        with self._lock:
            calls, self._calls = list(self._calls), deque()
            return calls

    def give_back(self, calls: list[Call]) -> None:
        with self._lock:
            self._calls.extendleft(reversed(calls))
            while len(self._calls) > BUFFER_MAX:
                self._calls.popleft()
                self.dropped += 1

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def _run(self, every: float) -> None:
        while True:
            time.sleep(every)
            every = get_settings().open_api_usage_flush_s
            if every <= 0:
                return  # turned off meanwhile (tests): the buffer waits for flush()
            try:
                flush()
            except Exception:  # kept for the next flush
                log.exception("open API usage not written; kept for the next flush")


_buffer = _Buffer()
# Tests start each from nothing: ``invalidation.forget_all`` drops the buffer too.
invalidation.subscribe("openplatform.usage", on_change=lambda _change: None, forget=_buffer.clear)


def record(*, client_pk: int, method: str, path: str, status: int, started: float) -> None:
    """Note a call (``started``: its ``time.perf_counter()``); written within a second."""
    ms = int((time.perf_counter() - started) * 1000)
    _buffer.add(Call(client_pk, now(), method, path[:200], status, ms))


def flush() -> int:
    """Write what this process has buffered; how many calls."""
    calls = _buffer.take()
    if not calls:
        return 0
    try:
        with unit_of_work() as session:
            session.execute(
                insert(AccessLogEntry),
                [
                    {"client_pk": c.client_pk, "at": c.at, "method": c.method, "path": c.path,
                     "status": c.status, "ms": c.ms}
                    for c in calls
                ],
            )  # fmt: skip
            per_day = Counter((c.client_pk, local_day(c.at)) for c in calls)
            table = UsageDay.__table__
            upsert = upsert_insert(get_engine().dialect.name)(table)
            for (client_pk, day), n in sorted(per_day.items()):
                session.execute(
                    upsert.values(client_pk=client_pk, day=day, calls=n).on_conflict_do_update(
                        index_elements=[table.c.client_pk, table.c.day],
                        set_={"calls": table.c.calls + upsert.excluded.calls},
                    )
                )
    except Exception:
        _buffer.give_back(calls)
        raise
    return len(calls)


@dataclass(frozen=True)
class DayUsage:
    day: date
    calls: int


def daily(session: Session, *, actor: Actor, client_pk: int, days: int = 30) -> list[DayUsage]:
    """A client's calls per day over the last ``days`` (days without calls left out)."""
    client = clients.get(session, actor=actor, client_pk=client_pk)
    since = local_day() - timedelta(days=days - 1)
    rows = session.execute(
        select(UsageDay.day, UsageDay.calls)
        .where(UsageDay.client_pk == client.id, UsageDay.day >= since)
        .order_by(UsageDay.day)
    )
    return [DayUsage(day, calls) for day, calls in rows]


@dataclass(frozen=True)
class Recent:
    """Calls of several clients per day over the last ``days`` days, oldest first."""

    days: list[date]
    calls: dict[int, list[int]]  # client pk -> calls on each of ``days``

    def total(self, client_pk: int, last: int) -> int:
        """A client's calls over the last ``last`` days."""
        return sum(self.calls.get(client_pk, [])[-last:])


def recent(session: Session, *, client_pks: list[int], days: int = 30) -> Recent:
    """Calls of each client per day over the last ``days`` (for clients the caller already
    sees), every day present, in one read."""
    today = local_day()
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    index = {day: n for n, day in enumerate(span)}
    calls = {pk: [0] * days for pk in client_pks}
    rows = session.execute(
        select(UsageDay.client_pk, UsageDay.day, UsageDay.calls).where(
            UsageDay.client_pk.in_(client_pks), UsageDay.day >= span[0]
        )
    )
    for client_pk, day, n in rows:
        if day in index:
            calls[client_pk][index[day]] = int(n)
    return Recent(span, calls)


def access_log(
    session: Session, *, actor: Actor, client_pk: int, before: int | None = None, limit: int = 50
) -> list[AccessLogEntry]:
    """A client's calls, newest first, a page at a time."""
    client = clients.get(session, actor=actor, client_pk=client_pk)
    stmt = select(AccessLogEntry).where(AccessLogEntry.client_pk == client.id)
    if before is not None:
        stmt = stmt.where(AccessLogEntry.id < before)
    return list(
        session.scalars(stmt.order_by(AccessLogEntry.id.desc()).limit(min(max(limit, 1), 500)))
    )


def purge(session: Session) -> int:
    """Housekeeping: the access log keeps :data:`KEEP_DAYS` days (daily counts stay)."""
    result = session.execute(
        delete(AccessLogEntry).where(AccessLogEntry.at < now() - timedelta(days=KEEP_DAYS))
    )
    return int(getattr(result, "rowcount", 0) or 0)

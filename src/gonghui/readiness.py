"""Readiness (``GET /readyz``): whether this process can serve, check by check.

Each check is a named probe that returns when its dependency answers and raises when it
does not: the database (a trivial query), the file store (the local directory writable,
the bucket reachable) and Redis when one is configured are here; others (the task queue)
are added with :func:`add_check` by the module that owns the dependency.

The endpoint is public (a load balancer asks it), so it answers only names and
``ok``/``failed``; the reason goes to the log. It costs at most one run of each probe per
process per :data:`CACHE_S`, however often it is asked, and never holds a caller longer
than :data:`TIMEOUT_S`: a probe still running from an earlier ask (a database that does not
answer) is waited for, not started again, and counts as failed until it returns.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from sqlalchemy import text

from gonghui import redis_conn
from gonghui.db import unit_of_work
from gonghui.settings import get_settings
from gonghui.storage import get_store

log = logging.getLogger(__name__)

# Seconds a readiness answer is reused; the longest a caller waits for the probes.
CACHE_S = 1.0
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    probe: Callable[[], object]
    # Whether the check applies to this deployment (Redis only when one is configured).
    applies: Callable[[], bool] = lambda: True


CHECKS: list[Check] = []


def add_check(
    name: str, probe: Callable[[], object], *, applies: Callable[[], bool] = lambda: True
) -> None:
    """Make ``/readyz`` also ask ``probe`` (returns when ready, raises when not; keep it
    cheap and bounded: a ping, with a timeout of its own below :data:`TIMEOUT_S`)."""
    if any(check.name == name for check in CHECKS):
        raise ValueError(f"a readiness check named {name!r} exists")
    CHECKS.append(Check(name, probe, applies))


def _database() -> None:
    with unit_of_work(read_only=True) as session:
        if not get_settings().is_sqlite:
            # A query stuck behind a lock gives its connection back by this deadline.
            session.execute(text(f"SET LOCAL statement_timeout = {int(TIMEOUT_S * 1000)}"))
        session.execute(text("SELECT 1"))


def _storage() -> None:
    get_store().ping()


def _redis() -> None:
    # redis_conn's client has a one-second socket timeout and one retry.
    redis_conn.client().ping()


add_check("database", _database)
add_check("storage", _storage)
add_check("redis", _redis, applies=redis_conn.configured)


@dataclass(frozen=True)
class Report:
    checks: dict[str, bool]

    @property
    def ready(self) -> bool:
        return all(self.checks.values())


class _Probes:
    """This process's last report, the round of probes running now (one at most), and
    each check's probe running now (one at most: a probe that hangs is not started again
    until it returns)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="readyz")
        self._running: dict[str, Future[object]] = {}
        self._round: Future[Report] | None = None
        self._last: tuple[float, Report] | None = None

    def current(self) -> Future[Report]:
        """The report of the round running now, or of a round started now."""
        with self._lock:
            if self._round is None or self._round.done():
                self._round = self._pool.submit(self._run_round)
            return self._round

    def fresh(self) -> Report | None:
        last = self._last
        if last is not None and time.monotonic() - last[0] < CACHE_S:
            return last[1]
        return None

    def _probe(self, check: Check) -> Future[object]:
        with self._lock:
            running = self._running.get(check.name)
            if running is None or running.done():
                running = self._running[check.name] = self._pool.submit(check.probe)
            return running

    def _run_round(self) -> Report:
        checks = [check for check in CHECKS if check.applies()]
        futures = [self._probe(check) for check in checks]
        wait(futures, timeout=TIMEOUT_S)
        results = {}
        for check, future in zip(checks, futures, strict=True):
            error = future.exception() if future.done() else TimeoutError("no answer in time")
            if error is not None:
                log.warning("readiness check %s failed: %s", check.name, error)
            results[check.name] = error is None
        report = Report(results)
        self._last = (time.monotonic(), report)
        return report

    def forget(self) -> None:
        self._last = None


_probes = _Probes()


async def report() -> Report:
    """Every check's outcome (see the module docstring for what it costs)."""
    fresh = _probes.fresh()
    if fresh is not None:
        return fresh
    # The round ends within TIMEOUT_S whatever the probes do; every caller meanwhile
    # awaits the same round, holding no thread.
    return await asyncio.wrap_future(_probes.current())


def forget() -> None:
    """Drop the reused answer (tests that change what a check sees)."""
    _probes.forget()

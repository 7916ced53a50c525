"""Pacing calls to an outside service that limits how often one client may call it (WeChat
Pay: 500 coupon sends a second per merchant): callers wait their turn here, across every
process, rather than collect the service's 429s and retry them later.

A pace of ``per_s`` calls a second counts them in :mod:`gonghui.ratelimit`'s windows (one
Lua script on Redis when configured, one upsert in the database otherwise), of a tenth of a
second each, allowing ``per_s // 11`` calls: a second overlaps at most eleven such windows,
so no second ever holds more than ``per_s`` calls, whichever second the service counts
(450 a second paced for 500 allowed). Under 11 a second, windows of a second allow
``per_s // 2`` (at least one). A process takes its calls from the window a block at a time
(a quarter of it) and hands them out to its threads, so the shared counter is written a
few times a window, not once a call; a block's calls unused when its window ends are lost,
which only makes the pace slower. When the window is spent, callers sleep until it ends;
the counter is asked once for the process, not again by each of its waiting threads (the
coupon sends' 64 threads asked it some 30 times a window, each a write transaction).
Calls leave paced but may arrive bunched (scheduling, the network), so a service's second
may still see a few more now and then: their 429 is retried by the caller as no answer.
A counter that cannot be reached raises :class:`gonghui.errors.ServiceUnavailable`, as the
rate limits do (fail closed): the caller's call is not made.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from gonghui import clock, ratelimit

WINDOW_S = 0.1
# A second overlaps at most this many windows of WINDOW_S.
SPAN = 11
# Never sleep less than this waiting for a window (a clock's rounding).
MIN_SLEEP_S = 0.005


class Pace:
    """At most ``per_s`` calls a second of ``key``, shared by every process."""

    def __init__(self, key: str, per_s: int) -> None:
        if per_s >= SPAN:
            self.window_s, self.limit = WINDOW_S, per_s // SPAN
        else:
            self.window_s, self.limit = 1.0, max(1, per_s // 2)
        self.key = key
        self.block = max(1, self.limit // 4)
        self._lock = threading.Lock()
        self._left = 0
        self._until = 0.0
        # The end of a window the counter said is spent: until then this process's callers
        # sleep without asking it again.
        self._spent_until = datetime.min.replace(tzinfo=UTC)

    def wait(self) -> None:
        """Return when the caller may make one call."""
        while True:
            with self._lock:
                at = time.monotonic()
                if self._left > 0 and at < self._until:
                    self._left -= 1
                    return
                remaining_s = (self._spent_until - clock.now()).total_seconds()
                if remaining_s <= 0:
                    grant = ratelimit.take(
                        self.key, n=self.block, limit=self.limit, window_s=self.window_s
                    )
                    remaining_s = (grant.window_ends_at - clock.now()).total_seconds()
                    if grant.granted > 0:
                        self._left, self._until = grant.granted - 1, at + remaining_s
                        return
                    self._spent_until = grant.window_ends_at
            time.sleep(min(max(remaining_s, MIN_SLEEP_S), self.window_s))


_paces: dict[tuple[str, int], Pace] = {}
_paces_lock = threading.Lock()


def wait(key: str, *, per_s: int) -> None:
    """Wait for a turn to call under ``key`` at ``per_s`` a second (0: at once)."""
    if per_s <= 0:
        return
    with _paces_lock:
        pace = _paces.get((key, per_s))
        if pace is None:
            pace = _paces[(key, per_s)] = Pace(key, per_s)
    pace.wait()

"""The pool of warm sandboxed workers that every invocation goes through.

- A worker serves one key (an app) for its whole life, so no state crosses apps; spare
  workers start unbound (``min_workers`` of them) and bind on first use, which is what
  makes a first invocation warm.
- The pool grows with demand up to ``max_workers`` and shrinks when workers sit idle longer
  than ``idle_s``; a worker is recycled after ``recycle_after`` runs, after a timeout and
  after a crash.
- ``per_key_max`` caps the invocations one key runs at once, so that one app cannot take
  every worker; callers beyond it wait (up to ``queue_timeout_s``) and then get a clear
  "busy" error.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gonghui.baas.functions.sandbox import Limits, Outcome, SdkHandler, Worker
from gonghui.errors import RateLimited


@dataclass(frozen=True)
class PoolConfig:
    python: str = "/usr/bin/python3"
    min_workers: int = 1
    max_workers: int = 8
    per_key_max: int = 4
    idle_s: float = 60.0
    recycle_after: int = 500
    queue_timeout_s: float = 10.0


@dataclass
class PoolStats:
    spawned: int = 0
    recycled: int = 0
    cold_starts: int = 0
    warm_starts: int = 0


class WorkerPool:
    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.stats = PoolStats()
        self._lock = threading.Condition()
        self._idle: dict[str | None, deque[Worker]] = {}
        self._running: dict[str, int] = {}
        self._total = 0
        self._slots = set(range(config.max_workers))
        self._closed = False
        # The reaper sleeps until the next idle worker may be stopped, or, with none to
        # stop, until a worker goes idle (it is woken then): an idle server stays asleep.
        self._reaper_wake = threading.Event()
        self._reaper_waits_for_idle = False
        self._reaper = threading.Thread(target=self._reap, name="functions-reaper", daemon=True)
        self._reaper.start()
        self._top_up()

    # -- public ---------------------------------------------------------------------------

    def invoke(
        self,
        *,
        key: str,
        source: str,
        event: Any,
        context: dict[str, Any],
        sdk: SdkHandler,
        limits: Limits,
    ) -> Outcome:
        """Run ``source`` in a worker of ``key``."""
        with self._admitted(key):
            worker, cold = self._checkout(key, limits)
            try:
                outcome = worker.invoke(source=source, event=event, context=context, sdk=sdk)
            except BaseException:
                self._discard(worker)
                raise
            outcome.cold = cold
            self._checkin(worker)
        self._top_up()
        return outcome

    def size(self) -> int:
        with self._lock:
            return self._total

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._idle.values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [w for q in self._idle.values() for w in q]
            self._idle.clear()
            self._lock.notify_all()
        self._reaper_wake.set()
        for worker in workers:
            worker.kill()

    # -- admission and checkout -----------------------------------------------------------

    @contextmanager
    def _admitted(self, key: str) -> Iterator[None]:
        deadline = time.monotonic() + self.config.queue_timeout_s
        with self._lock:
            while self._running.get(key, 0) >= self.config.per_key_max:
                if not self._lock.wait(deadline - time.monotonic()):
                    raise RateLimited(
                        "functions.busy",
                        "this app already runs as many functions as it may; try again",
                        retry_after_s=1,
                    )
            self._running[key] = self._running.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._running[key] -= 1
                self._lock.notify_all()

    def _checkout(self, key: str, limits: Limits) -> tuple[Worker, bool]:
        deadline = time.monotonic() + self.config.queue_timeout_s
        with self._lock:
            while True:
                for pool_key in (key, None):
                    queue = self._idle.get(pool_key)
                    while queue:
                        worker = queue.pop()
                        if worker.alive and worker.limits == limits:
                            worker.key = key
                            self.stats.warm_starts += 1
                            return worker, False
                        self._release_locked(worker)
                if self._total < self.config.max_workers or self._evict_locked():
                    slot = self._slots.pop()
                    self._total += 1
                    break
                if not self._lock.wait(max(deadline - time.monotonic(), 0)):
                    raise RateLimited(
                        "functions.busy",
                        "every function worker is busy; try again",
                        retry_after_s=1,
                    )
        try:
            worker = self._spawn(slot, limits)
        except BaseException:
            with self._lock:
                self._total -= 1
                self._slots.add(slot)
                self._lock.notify_all()
            raise
        worker.key = key
        self.stats.cold_starts += 1
        return worker, True

    def _checkin(self, worker: Worker) -> None:
        if not worker.alive or worker.runs >= self.config.recycle_after:
            self._discard(worker)
            return
        with self._lock:
            if self._closed:
                self._release_locked(worker)
                return
            self._idle.setdefault(worker.key, deque()).append(worker)
            self._lock.notify_all()
            if self._reaper_waits_for_idle:
                self._reaper_waits_for_idle = False
                self._reaper_wake.set()

    def _discard(self, worker: Worker) -> None:
        with self._lock:
            self.stats.recycled += 1
            self._release_locked(worker)

    # -- growth and shrinking ---------------------------------------------------------------

    def _spawn(self, slot: int, limits: Limits) -> Worker:
        worker = Worker(python=self.config.python, limits=limits, slot=slot)
        with self._lock:
            self.stats.spawned += 1
        return worker

    def _top_up(self) -> None:
        """Keep ``min_workers`` unbound spares warm for first invocations."""
        while True:
            with self._lock:
                spares = len(self._idle.get(None, ()))
                if (
                    self._closed
                    or spares >= self.config.min_workers
                    or self._total >= self.config.max_workers
                ):
                    return
                slot = self._slots.pop()
                self._total += 1
            try:
                worker = self._spawn(slot, Limits())
            except Exception:
                with self._lock:
                    self._total -= 1
                    self._slots.add(slot)
                return
            worker.key = None
            self._checkin(worker)

    def _evict_locked(self) -> bool:
        """Make room by stopping the longest-idle worker of any key."""
        oldest: tuple[float, str | None] | None = None
        for key, queue in self._idle.items():
            if queue and (oldest is None or queue[0].idle_since < oldest[0]):
                oldest = (queue[0].idle_since, key)
        if oldest is None:
            return False
        self._release_locked(self._idle[oldest[1]].popleft())
        self.stats.recycled += 1
        return True

    def _release_locked(self, worker: Worker) -> None:
        worker.kill()
        self._total -= 1
        self._slots.add(worker.slot)
        self._lock.notify_all()

    def reap_idle(self, *, now: float | None = None) -> int:
        """Stop workers idle longer than ``idle_s`` (keeping ``min_workers`` spares)."""
        cutoff = (time.monotonic() if now is None else now) - self.config.idle_s
        stopped = 0
        with self._lock:
            for key, queue in self._idle.items():
                keep = self.config.min_workers if key is None else 0
                while len(queue) > keep and queue[0].idle_since < cutoff:
                    self._release_locked(queue.popleft())
                    self.stats.recycled += 1
                    stopped += 1
        return stopped

    def _next_reap_locked(self) -> float | None:
        """When (monotonic) the longest-idle worker that may be stopped reaches
        ``idle_s``; None when every idle worker is a spare to keep."""
        due: float | None = None
        for key, queue in self._idle.items():
            keep = self.config.min_workers if key is None else 0
            if len(queue) > keep:
                at = queue[0].idle_since + self.config.idle_s
                due = at if due is None else min(due, at)
        return due

    def _reap(self) -> None:
        while not self._closed:
            self.reap_idle()
            with self._lock:
                due = self._next_reap_locked()
                self._reaper_waits_for_idle = due is None
            self._reaper_wake.wait(None if due is None else max(due - time.monotonic(), 0.0))
            self._reaper_wake.clear()

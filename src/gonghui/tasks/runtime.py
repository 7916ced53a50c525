"""A worker: what ``gonghui worker`` runs, and what ``gonghui serve`` runs in its own
process when it is configured to (the embedded default).

Three parts: Dramatiq's worker (threads taking messages from the broker and running
them), the relay (sending the rows that are due and were not sent as they committed,
:func:`gonghui.tasks.queue.relay_due`) and the clock (queueing periodic work as its
window comes, :func:`gonghui.tasks.queue.arm_periodic`). Any number of workers may run on
any number of machines: the rows decide who runs what.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import dramatiq

from gonghui import db, readiness
from gonghui.settings import get_settings
from gonghui.tasks import broker, queue

log = logging.getLogger("gonghui.tasks")

# How often the Dramatiq worker looks at an empty queue, in milliseconds.
IDLE_POLL_MS = 100


def _failed(what: str, exc: Exception) -> None:
    """A pass that failed: one line while the database is unreachable (every pass would
    fail the same way until it is back), the traceback otherwise."""
    if db.unavailable(exc) is not None:
        log.warning("%s: the database is unavailable", what)
    else:
        log.exception("%s failed", what)


class _Runtime:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worker: dramatiq.Worker | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.wake = threading.Event()

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self, *, threads: int | None = None) -> None:
        with self._lock:
            if self._worker is not None or self._threads:
                return
            count = threads or get_settings().worker_threads
            self._stop.clear()
            if not self._register(count):
                # The database is down as this process starts (a server process restarted
                # during an outage): the process serves (its answers say the database is
                # unavailable) and its worker starts once the worker is registered.
                self._threads = [
                    threading.Thread(
                        target=self._start_later, args=(count,), name="tasks-start", daemon=True
                    )
                ]
                self._threads[0].start()
                return
            self._run(count)

    def _register(self, count: int) -> bool:
        """Register this process's worker; False while the database is unavailable."""
        try:
            queue.register_worker(host=socket.gethostname(), pid=os.getpid(), threads=count)
        except Exception as exc:
            if db.unavailable(exc) is None:
                raise
            _failed("worker registration", exc)
            return False
        return True

    def _start_later(self, count: int) -> None:
        while not self._stop.wait(get_settings().task_poll_s):
            if self._register(count):
                with self._lock:
                    if not self._stop.is_set():
                        self._run(count)
                return

    def _run(self, count: int) -> None:
        """Start the registered worker and its threads (holding the lock)."""
        worker = dramatiq.Worker(broker.get(), worker_threads=count, worker_timeout=IDLE_POLL_MS)
        worker.start()
        self._worker = worker
        self._threads = [
            threading.Thread(target=self._relay, name="tasks-relay", daemon=True),
            threading.Thread(target=self._clock, name="tasks-clock", daemon=True),
            threading.Thread(target=self._heart, name="tasks-heartbeat", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Stop taking work and wait up to ``timeout_s`` for the runs in progress (a run
        still going then is sent again once its lease passes)."""
        with self._lock:
            worker, self._worker = self._worker, None
            threads, self._threads = self._threads, []
            self._stop.set()
            self.wake.set()
        for thread in threads:
            thread.join(timeout=timeout_s)
        if worker is not None:
            worker.stop(timeout=int(timeout_s * 1000))
            try:
                queue.unregister_worker()
            except Exception:  # its row goes stale and housekeeping removes it
                log.exception("could not unregister the worker")

    def _heart(self) -> None:
        every_s = get_settings().task_heartbeat_timeout_s / 4
        while not self._stop.wait(every_s):
            try:
                queue.beat()
            except Exception as exc:
                _failed("worker heartbeat", exc)

    def _relay(self) -> None:
        poll_s = get_settings().task_poll_s
        while not self._stop.is_set():
            self.wake.clear()
            try:
                # A full batch: more may be due at once.
                while queue.relay_due() == queue.RELAY_BATCH and not self._stop.is_set():
                    pass
            except Exception as exc:
                _failed("task relay pass", exc)
            self.wake.wait(poll_s)

    def _clock(self) -> None:
        while not self._stop.is_set():
            # As often as the most frequent periodic kind, at least once a second.
            periods = [k.every_s() for k in queue.kinds().values() if k.every_s is not None]
            interval_s = min([1.0, *periods])
            try:
                if queue.arm_periodic():
                    self.wake.set()  # what was armed is due now: the relay sends it
            except Exception as exc:
                _failed("task clock pass", exc)
            self._stop.wait(interval_s)


_runtime = _Runtime()


# A process running a worker sends what it defers to its broker as it commits; others
# (API processes beside separate workers, the hot writer) leave it to the workers' relays.
queue.sends_on_commit(lambda: _runtime.running)


def start(*, threads: int | None = None) -> None:
    """Run a worker in this process (idempotent)."""
    _runtime.start(threads=threads)


def stop(*, timeout_s: float = 30.0) -> None:
    _runtime.stop(timeout_s=timeout_s)


def running() -> bool:
    return _runtime.running


def _ready() -> None:
    """The queue's readiness: its table answers, and, in a process running a worker, the
    broker it takes work from."""
    queue.ping()
    if _runtime.running:
        broker.ping()


readiness.add_check("queue", _ready)


def wake() -> None:
    """Something is due now: relay it rather than at the next poll."""
    _runtime.wake.set()

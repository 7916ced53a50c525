"""The batching writer: one thread that runs members' hot writes in group commits.

At the minute an activity opens, thousands of members write at once. Left to the
database, every request would open its own write transaction and queue on the write lock
(SQLite has one; PostgreSQL pays a commit each). Instead the writer thread takes every
job waiting, a function of a session, runs each in its own savepoint of one transaction,
commits once, and only then answers each caller. So a success is durable before its
response leaves, a job that fails leaves nothing behind, and a commit that fails fails
every job of its batch.

An operation can also declare a batch form (:func:`batched`): the jobs of a batch that
name it are then run by one call that takes all their arguments and answers each, so that
a thousand members' draws cost a few statements per batch rather than a dozen per draw.

Each job runs under the id of the request that submitted it (its logs, audit rows and
stored events carry it); a batch form serves many requests at once and finds each call's
with :func:`request_id_of`.

On SQLite, writers in different processes take turns: an exclusive ``flock`` on a lock file
in the data directory (the kernel releases it if the process dies), as SQLite has one
writer anyway. On PostgreSQL there is no turn: the writers of every process on every host
run their batches at once, and each operation is correct against the others by itself
(stock, limits, chances and budgets taken by conditional row updates, rows locked in one
order, unique constraints where a thing may exist once). A batch that still loses a
deadlock or a serialization failure to another is rolled back whole and run again, up to
:data:`MAX_TRIES` times, rather than failing its jobs.

After each batch the writer notes how long it ran (:class:`gonghui.hotwrite.load.Meter`):
background work on the same host reads how busy the members keep it and gives way.

A batch that meets the database unreachable (down, restarting, its connection dropped) is
given up whole: every job fails with 503 ``database.unavailable`` (:func:`gonghui.db.unavailable`),
whose outcome is unknown if the commit itself went unanswered, and which its caller retries
with the same idempotency key. The writer goes on; its next batch takes a new connection.
"""

from __future__ import annotations

import fcntl
import inspect
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from gonghui.db import AfterCommit, unavailable, unit_of_work
from gonghui.errors import DomainError
from gonghui.hotwrite.load import Meter
from gonghui.observability import request_id_var, request_scope
from gonghui.settings import get_settings

Op = Callable[..., Any]
OpT = TypeVar("OpT", bound=Op)
CallT = TypeVar("CallT")
# A batch form: every job's keyword arguments in, each job's result or DomainError out.
Many = Callable[[Session, Sequence[Mapping[str, Any]]], Sequence[Any]]

# Group commit by natural batching: a batch is every job waiting when the writer turns
# to it (up to MAX_BATCH), and it never waits for more. While one batch runs, the next one
# gathers, so the busier the writer, the larger its batches. A lone job goes at once. A
# linger (waiting up to 5 ms for more jobs) was tried: under a 64-connection burst it left
# the server processes idle while the writer waited, and removing it raised draws from
# 0.34 to 0.38 of the ping and votes from 0.33 to 0.35 (bench/draw_burst.py, bench/vote.py).
MAX_BATCH = 128
# A batch that loses a deadlock or a serialization failure to another transaction is run
# again, after a random pause of up to RETRY_PAUSE_S times its attempt, at most MAX_TRIES
# times in all; then its jobs fail.
MAX_TRIES = 5
RETRY_PAUSE_S = 0.01
# deadlock_detected, serialization_failure (PostgreSQL's SQLSTATEs).
_RETRYABLE = frozenset({"40P01", "40001"})
# session.info: which run of its batch the session's transaction is (1, 2, ...).
_ATTEMPT = "hotwrite.attempt"


class RunAgain(Exception):
    """An operation's optimistic first try lost a race to another writer (what it read
    without locking changed before it wrote): the writer rolls the whole batch back and
    runs it again, when :func:`first_try` is False."""


log = logging.getLogger(__name__)


@dataclass
class Job:
    op: Op
    kwargs: dict[str, Any]
    future: Future[Any] = field(default_factory=Future)
    result: Any = None
    error: BaseException | None = None
    # Jobs from another process: its id there, and where the batch's answers to it go
    # (called once per batch with its jobs, after their futures are settled).
    tag: int = 0
    sink: Callable[[list[Job]], None] | None = None
    # The request that submitted it.
    request_id: str | None = None


# The request ids of the calls a batch form is running, in the order of its calls.
_batch_request_ids: ContextVar[tuple[str | None, ...]] = ContextVar(
    "hotwrite_batch_request_ids", default=()
)


def request_id_of(call: int) -> str | None:
    """The id of the request behind call number ``call`` of the batch form running now
    (outside a batch form: the current job's)."""
    ids = _batch_request_ids.get()
    return ids[call] if call < len(ids) else request_id_var.get()


class Writer:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock_fd = -1
        self._meter = Meter()

    def submit(
        self,
        op: Op,
        kwargs: dict[str, Any],
        *,
        tag: int = 0,
        sink: Callable[[list[Job]], None] | None = None,
        request_id: str | None = None,
    ) -> Future[Any]:
        """Queue ``op(session, **kwargs)``, run under ``request_id`` (by default the
        current request's)."""
        self._ensure_running()
        job = Job(op, kwargs, tag=tag, sink=sink, request_id=request_id or request_id_var.get())
        self._jobs.put(job)
        return job.future

    def _ensure_running(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is None or self._pid != os.getpid():  # none yet, or forked
                self._jobs = queue.SimpleQueue()
                self._pid = os.getpid()
                self._lock_fd = -1
                self._meter = Meter()
                self._thread = threading.Thread(
                    target=self._loop, name="gonghui-hot-writer", daemon=True
                )
                self._thread.start()

    def _next_batch(self) -> list[Job]:
        batch = [self._jobs.get()]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while True:
            batch = [job for job in self._next_batch() if job.future.set_running_or_notify_cancel()]
            started = time.monotonic()
            self._run_tries(batch)
            self._meter.ran(time.monotonic() - started)
            sinks: dict[Callable[[list[Job]], None], list[Job]] = {}
            for job in batch:
                if job.error is not None:
                    job.future.set_exception(job.error)
                else:
                    job.future.set_result(job.result)
                if job.sink is not None:
                    sinks.setdefault(job.sink, []).append(job)
            for sink, jobs in sinks.items():
                try:
                    sink(jobs)
                except Exception:  # the writer goes on; those callers see the writer go
                    log.exception("answering %d hot writes failed", len(jobs))

    def _run_tries(self, batch: list[Job]) -> None:
        """Run the batch, again if it loses a deadlock; sets each job's result or error."""
        for attempt in range(1, MAX_TRIES + 1):
            for job in batch:
                job.result = job.error = None
            try:
                with self._turn():
                    self._run(batch, attempt)
                return
            except BaseException as exc:  # rolled back: nothing of the batch is durable
                if retryable(exc) and attempt < MAX_TRIES:
                    log.info("hot write batch of %d lost a race (%r); again", len(batch), exc)
                    time.sleep(random.uniform(0, RETRY_PAUSE_S * attempt))
                    continue
                if unavailable(exc) is not None:
                    # Rolled back, or (a commit that went unanswered) perhaps committed:
                    # every job is answered alike, and its retry finds out which.
                    log.warning("hot write batch of %d: %s", len(batch), str(exc).splitlines()[0])
                    for job in batch:
                        job.error = unavailable(exc)
                    return
                log.exception("hot write batch of %d failed", len(batch))
                for job in batch:
                    job.error = job.error or exc
                return

    def _run(self, batch: list[Job], attempt: int = 1) -> None:
        with unit_of_work() as session:
            _keep_loaded(session)
            session.info[_ATTEMPT] = attempt
            session.info.setdefault("after_commit", [])
            by_op: dict[Op, list[Job]] = {}
            for job in batch:
                by_op.setdefault(job.op, []).append(job)
            # Every batch runs its operations in one order, so that batches of several
            # operations take their rows in one order too.
            for op, jobs in sorted(by_op.items(), key=lambda item: _op_order(item[0])):
                many = _batch_forms.get(op)
                if many is None or len(jobs) == 1 or not _run_together(session, many, jobs):
                    for job in jobs:
                        _run_alone(session, job)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's writer holds the database's hot-write turn (SQLite only)."""
        if not get_settings().is_sqlite:
            yield
            return
        if self._lock_fd < 0:
            settings = get_settings()
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            path = settings.data_dir / "hot-writer.lock"
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def _run_alone(session: Session, job: Job) -> None:
    """One job in a savepoint of its own: if it fails, nothing of it stays."""
    callbacks: list[AfterCommit] = session.info["after_commit"]
    registered = len(callbacks)
    try:
        with session.begin_nested(), request_scope(job.request_id):
            try:
                job.result = job.op(session, **job.kwargs)
            except DomainError as exc:
                if not exc.keep_changes:
                    raise
                job.error = exc  # its changes are kept, like unit_of_work's
    except BaseException as exc:
        if retryable(exc) or unavailable(exc):
            raise  # the whole batch goes again, or (the database gone) fails
        job.error = exc
        del callbacks[registered:]  # rolled back: its after-commit effects too


def _run_together(session: Session, many: Many, jobs: list[Job]) -> bool:
    """The jobs of one batched operation in one call of its batch form, in a savepoint.
    If the call itself fails (not a job refused: a fault), it leaves nothing and the
    caller runs the jobs alone, so that the fault stays with the job that causes it."""
    callbacks: list[AfterCommit] = session.info["after_commit"]
    registered = len(callbacks)
    ids = _batch_request_ids.set(tuple(job.request_id for job in jobs))
    try:
        with session.begin_nested():
            outcomes = many(session, [job.kwargs for job in jobs])
    except Exception as exc:
        if retryable(exc) or unavailable(exc):
            raise  # the whole batch goes again, or (the database gone) fails
        del callbacks[registered:]
        log.warning("batch of %d jobs failed; running them alone", len(jobs), exc_info=True)
        return False
    finally:
        _batch_request_ids.reset(ids)
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            job.error = outcome
        else:
            job.result = outcome
    return True


def retryable(exc: BaseException) -> bool:
    """A deadlock, a serialization failure or :class:`RunAgain`: the transaction lost a
    race, and is worth running again as a whole (PostgreSQL; SQLite's single writer never
    sees one)."""
    if isinstance(exc, RunAgain):
        return True
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRYABLE


def first_try(session: Session) -> bool:
    """Whether ``session`` runs a batch of the writer for the first time: an operation
    may then write optimistically and raise :class:`RunAgain` if that loses a race, to
    be run again with locks taken up front. False outside the writer."""
    return session.info.get(_ATTEMPT) == 1


def _op_order(op: Op) -> tuple[str, str]:
    return (op.__module__, op.__qualname__)


_batch_forms: dict[Op, Many] = {}


def batched(many: Many) -> Callable[[OpT], OpT]:
    """Declare ``many`` the batch form of the decorated operation.

    ``many(session, calls)`` gets the keyword arguments of every job of a batch that names
    the operation and returns, in the same order, each job's result or the DomainError
    that refuses it (returned, not raised). A refused job must leave nothing written; any
    exception ``many`` raises counts as a fault of the call, and the writer then runs the
    jobs one by one through the operation itself, usually ``one(many, session, ...)``."""

    def declare(op: OpT) -> OpT:
        # A hot operation is ``op(session, **kwargs)``: anything else under this decorator
        # is a slip (a helper landed between the decorator and its operation), which would
        # leave the operation running one job at a time.
        first = next(iter(inspect.signature(op).parameters), None)
        if first != "session":
            raise TypeError(f"{op.__qualname__} is not a hot operation op(session, **kwargs)")
        _batch_forms[op] = many
        return op

    return declare


def batch_form(op: Op) -> Many | None:
    """The batch form declared for ``op`` with :func:`batched`, if any."""
    return _batch_forms.get(op)


def one(many: Many, session: Session, /, **kwargs: Any) -> Any:
    """One job through a batch form: its result, or its error raised."""
    (outcome,) = many(session, [kwargs])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def rounds(calls: Sequence[CallT], member: Callable[[CallT], int]) -> list[list[CallT]]:
    """A batch form's calls in batch order with each member at most once a round: a
    member's second call in the batch goes in the second round, after everyone's first
    (so that a round claims each member's rows once, in one statement)."""
    found: list[list[CallT]] = []
    seen: dict[int, int] = {}
    for call in calls:
        n = seen.get(member(call), 0)
        seen[member(call)] = n + 1
        if n == len(found):
            found.append([])
        found[n].append(call)
    return found


def _keep_loaded(session: Session) -> None:
    """Hold every object the batch loads until it ends (SQLAlchemy's strong-reference
    recipe): the session's identity map is weak, and the jobs of a batch read the same
    activity, org and prizes again and again."""
    kept: set[object] = session.info.setdefault("kept", set())

    @event.listens_for(session, "loaded_as_persistent")
    @event.listens_for(session, "transient_to_pending")
    def _keep(_session: Session, instance: object) -> None:
        kept.add(instance)


# This process's writer (its thread starts with the first job).
local_writer = Writer()

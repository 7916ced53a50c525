"""Members' hot writes (draws, quiz attempts, claims) through one batching writer per process.

At the minute an activity opens, thousands of members write at once. Left to the
database, every request would open its own write transaction and queue on the write lock
(SQLite has one; PostgreSQL pays a commit each). Instead each process has one writer
thread. Requests hand it their work, a function of a session; the writer takes every job
waiting, runs each in its own savepoint of one transaction, commits once, and only then
answers each caller. So a success is durable before its response leaves, a job that
fails leaves nothing behind, and a commit that fails fails every job of its batch.

``gonghui serve`` runs that writer in a process of its own, which every server process
hands its jobs to over a Unix socket: one writer for the whole server, whose batches never
wait for a busy request thread to let go of the interpreter lock. A job is then named,
not shipped: a module-level function ``op(session, **kwargs)`` and picklable arguments.
Without that process (tests, CLI commands) each process runs a writer thread of its own.

An operation can also declare a batch form (:func:`batched`): the jobs of a batch that
name it are then run by one call that takes all their arguments and answers each, so that
a thousand members' draws cost a few statements per batch rather than a dozen per draw.

Writers in different processes take turns: on SQLite an exclusive ``flock`` on a lock file
in the data directory (the kernel releases it if the process dies), on PostgreSQL a
transaction-scoped advisory lock, so that two batches never deadlock on the same rows.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import fcntl
import functools
import importlib
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, TypeVar, cast

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from gonghui.db import AfterCommit, unit_of_work
from gonghui.errors import DomainError
from gonghui.settings import get_settings

T = TypeVar("T")
Op = Callable[..., Any]
OpT = TypeVar("OpT", bound=Op)
# A batch form: every job's keyword arguments in, each job's result or DomainError out.
Many = Callable[[Session, Sequence[Mapping[str, Any]]], Sequence[Any]]

MAX_BATCH = 128
# Group commit: a batch that is not full waits up to LINGER_S for one more job, as long as
# jobs keep coming, but LINGER_MAX_S in all. A lone request waits 2 ms more; under a burst
# the batches grow, and each commit, savepoint and statement serves more jobs.
LINGER_S = 0.002
LINGER_MAX_S = 0.005
# pg_advisory_xact_lock key: "gonghui hot writer".
_PG_LOCK_KEY = 0x6E6F6E6768756921

log = logging.getLogger(__name__)


@dataclass
class _Job:
    op: Op
    kwargs: dict[str, Any]
    future: Future[Any] = field(default_factory=Future)
    result: Any = None
    error: BaseException | None = None
    # Jobs from another process: its id there, and where the batch's answers to it go
    # (called once per batch with its jobs, after their futures are settled).
    tag: int = 0
    sink: Callable[[list[_Job]], None] | None = None


class _Writer:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock_fd = -1

    def submit(
        self,
        op: Op,
        kwargs: dict[str, Any],
        *,
        tag: int = 0,
        sink: Callable[[list[_Job]], None] | None = None,
    ) -> Future[Any]:
        self._ensure_running()
        job = _Job(op, kwargs, tag=tag, sink=sink)
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
                self._thread = threading.Thread(
                    target=self._loop, name="gonghui-hot-writer", daemon=True
                )
                self._thread.start()

    def _next_batch(self) -> list[_Job]:
        batch = [self._jobs.get()]
        deadline = time.monotonic() + LINGER_MAX_S
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._jobs.get_nowait())
                continue
            except queue.Empty:
                pass
            wait = min(LINGER_S, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                batch.append(self._jobs.get(timeout=wait))
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while True:
            batch = [job for job in self._next_batch() if job.future.set_running_or_notify_cancel()]
            try:
                with self._turn():
                    self._run(batch)
            except BaseException as exc:  # the commit (or the lock) failed: nothing is durable
                log.exception("hot write batch of %d failed", len(batch))
                for job in batch:
                    job.error = job.error or exc
            sinks: dict[Callable[[list[_Job]], None], list[_Job]] = {}
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

    def _run(self, batch: list[_Job]) -> None:
        with unit_of_work() as session:
            _keep_loaded(session)
            if not get_settings().is_sqlite:
                session.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
            session.info.setdefault("after_commit", [])
            by_op: dict[Op, list[_Job]] = {}
            for job in batch:
                by_op.setdefault(job.op, []).append(job)
            for op, jobs in by_op.items():
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


def _run_alone(session: Session, job: _Job) -> None:
    """One job in a savepoint of its own: if it fails, nothing of it stays."""
    callbacks: list[AfterCommit] = session.info["after_commit"]
    registered = len(callbacks)
    try:
        with session.begin_nested():
            try:
                job.result = job.op(session, **job.kwargs)
            except DomainError as exc:
                if not exc.keep_changes:
                    raise
                job.error = exc  # its changes are kept, like unit_of_work's
    except BaseException as exc:
        job.error = exc
        del callbacks[registered:]  # rolled back: its after-commit effects too


def _run_together(session: Session, many: Many, jobs: list[_Job]) -> bool:
    """The jobs of one batched operation in one call of its batch form, in a savepoint.
    If the call itself fails (not a job refused: a fault), it leaves nothing and the
    caller runs the jobs alone, so that the fault stays with the job that causes it."""
    callbacks: list[AfterCommit] = session.info["after_commit"]
    registered = len(callbacks)
    try:
        with session.begin_nested():
            outcomes = many(session, [job.kwargs for job in jobs])
    except Exception:
        del callbacks[registered:]
        log.warning("batch of %d jobs failed; running them alone", len(jobs), exc_info=True)
        return False
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            job.error = outcome
        else:
            job.result = outcome
    return True


_batch_forms: dict[Op, Many] = {}


def batched(many: Many) -> Callable[[OpT], OpT]:
    """Declare ``many`` the batch form of the decorated operation.

    ``many(session, calls)`` gets the keyword arguments of every job of a batch that names
    the operation and returns, in the same order, each job's result or the DomainError
    that refuses it (returned, not raised). A refused job must leave nothing written; any
    exception ``many`` raises counts as a fault of the call, and the writer then runs the
    jobs one by one through the operation itself, usually ``one(many, session, ...)``."""

    def declare(op: OpT) -> OpT:
        _batch_forms[op] = many
        return op

    return declare


def one(many: Many, session: Session, /, **kwargs: Any) -> Any:
    """One job through a batch form: its result, or its error raised."""
    (outcome,) = many(session, [kwargs])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _keep_loaded(session: Session) -> None:
    """Hold every object the batch loads until it ends (SQLAlchemy's strong-reference
    recipe): the session's identity map is weak, and the jobs of a batch read the same
    activity, org and prizes again and again."""
    kept: set[object] = session.info.setdefault("kept", set())

    @event.listens_for(session, "loaded_as_persistent")
    @event.listens_for(session, "transient_to_pending")
    def _keep(_session: Session, instance: object) -> None:
        kept.add(instance)


_writer = _Writer()


# -- the writer process ---------------------------------------------------------------------


@functools.cache
def _named(op: Callable[..., Any]) -> tuple[str, str]:
    """How the writer process finds ``op`` again (checked once per function)."""
    name = (op.__module__, op.__qualname__)
    try:
        found = _resolve(*name)
    except (ImportError, AttributeError):
        found = None
    if found is not op:
        raise TypeError(f"{op!r} is not a module-level function; the writer cannot name it")
    return name


def _resolve(module: str, qualname: str) -> Callable[..., Any]:
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return cast(Callable[..., Any], found)


def _portable(exc: BaseException) -> tuple[str, str, tuple[Any, ...], dict[str, Any]]:
    """An exception as (class, args, attributes), rebuilt without calling ``__init__``
    (a DomainError's signature is not its ``args``)."""
    cls = type(exc)
    state = (cls.__module__, cls.__qualname__, exc.args, dict(vars(exc)))
    try:
        pickle.dumps(state)
    except Exception:
        return ("builtins", "RuntimeError", (f"{cls.__name__}: {exc}",), {})
    return state


def _rebuild(state: tuple[str, str, tuple[Any, ...], dict[str, Any]]) -> BaseException:
    module, qualname, args, attributes = state
    cls = cast(type[BaseException], _resolve(module, qualname))
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(attributes)
    return exc


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the server that started it dies (even by SIGKILL)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _writer_main(address: str, parent: int) -> None:
    _die_with_parent()
    if os.getppid() != parent:
        return
    from gonghui.app import create_app

    create_app()  # imports every domain: the operations, their hooks and models
    listener = Listener(address, family="AF_UNIX")
    os.chmod(address, 0o600)
    while True:
        connection = listener.accept()
        threading.Thread(target=_serve, args=(connection,), daemon=True).start()


def _answers(jobs: list[_Job]) -> bytes:
    """Answers to jobs of another process, as one message: each job's result, else its
    error (a result that cannot be sent is answered as the error it raises)."""
    answers = []
    for job in jobs:
        error = job.future.exception()
        answers.append((job.tag, True, job.result) if error is None else _failed(job.tag, error))
    try:
        return pickle.dumps(answers, pickle.HIGHEST_PROTOCOL)
    except Exception:
        return pickle.dumps([_sendable(answer) for answer in answers], pickle.HIGHEST_PROTOCOL)


def _failed(tag: int, error: BaseException) -> tuple[int, bool, Any]:
    return (tag, False, _portable(error))


def _sendable(answer: tuple[int, bool, Any]) -> tuple[int, bool, Any]:
    try:
        pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return _failed(answer[0], exc)
    return answer


# How long the writer waits for a server process to take its answers before it gives that
# process up (a stopped process): the others' batches wait that long at most, once.
ANSWER_TIMEOUT_S = 1.0


def _serve(connection: Connection) -> None:
    """One server process's jobs, in messages of all it had ready: run each in the
    writer; answer each batch's jobs once it is committed, in one message sent by the
    writer thread itself (a hand-off to another thread costs it more than the send)."""
    sock = socket.socket(fileno=os.dup(connection.fileno()))
    timeout = struct.pack("ll", int(ANSWER_TIMEOUT_S), int(ANSWER_TIMEOUT_S % 1 * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
    sending = threading.Lock()
    gone = False

    def send(message: bytes) -> None:
        nonlocal gone
        with sending:
            if gone:
                return  # the work is committed regardless
            try:
                connection.send_bytes(message)
            except OSError:
                gone = True
                log.warning("a server process stopped taking its answers; giving it up")
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # its reader below sees the end

    def answer(jobs: list[_Job]) -> None:
        send(_answers(jobs))

    try:
        while True:
            try:
                jobs = pickle.loads(connection.recv_bytes())
            except (EOFError, OSError):
                return
            for job_id, module, qualname, kwargs in jobs:
                try:
                    op = _resolve(module, qualname)
                except Exception as exc:
                    send(pickle.dumps([_failed(job_id, exc)], pickle.HIGHEST_PROTOCOL))
                    continue
                _writer.submit(op, kwargs, tag=job_id, sink=answer)
    finally:
        with sending:
            gone = True
            connection.close()
            sock.close()


class WriterUnavailable(DomainError):
    status_code = 503


# A job as a server process sends it: (id, module, operation, keyword arguments).
_Sent = tuple[int, str, str, dict[str, Any]]
# A job waiting for its answer: a thread's future, or an event loop's.
_Waiter = Future[Any] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class _Client:
    """A server process's connection to the writer process (shared by its threads and its
    event loop). A thread's job goes out at once; an event loop's jobs go out together, all
    those submitted in one turn of the loop in one message. Answers come back in messages
    of all that is ready, read by a receiver thread, and an event loop is woken once per
    message, not once per answer. So a burst costs a few system calls, not two per job."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._lock = threading.Lock()  # the connection and the pending jobs
        self._sending = threading.Lock()
        self._connection: Connection | None = None
        self._pending: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        self._pid = 0
        # Jobs an event loop submitted this turn, sent at its next turn.
        self._unsent: dict[asyncio.AbstractEventLoop, list[_Sent]] = {}

    def submit(self, op: Callable[..., Any], kwargs: dict[str, Any]) -> Future[Any]:
        future: Future[Any] = Future()
        job = self._register(op, kwargs, future)
        if job is not None:
            self._send([job])
        return future

    def submit_async(self, op: Callable[..., Any], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        job = self._register(op, kwargs, (loop, future))
        if job is not None:
            unsent = self._unsent.get(loop)
            if unsent is None:
                self._unsent[loop] = [job]
                loop.call_soon(self._send_unsent, loop)
            else:
                unsent.append(job)
        return future

    def _send_unsent(self, loop: asyncio.AbstractEventLoop) -> None:
        self._send(self._unsent.pop(loop))

    def _register(
        self, op: Callable[..., Any], kwargs: dict[str, Any], waiter: _Waiter
    ) -> _Sent | None:
        """The job as sent, now awaited; None if there is no writer to send it to."""
        module, qualname = _named(op)
        with self._lock:
            try:
                self._connect()
            except OSError as exc:
                _settle([(waiter, False, WriterUnavailable("server.writer_unavailable", f"{exc}"))])
                return None
            job_id = next(self._ids)
            self._pending[job_id] = waiter
        return (job_id, module, qualname, kwargs)

    def _connect(self) -> None:
        if self._connection is None or self._pid != os.getpid():
            self._connection = Client(self._address, family="AF_UNIX")
            self._pid = os.getpid()
            threading.Thread(
                target=self._receive,
                args=(self._connection,),
                name="hot-writer-replies",
                daemon=True,
            ).start()

    def _send(self, jobs: list[_Sent]) -> None:
        try:
            message = pickle.dumps(jobs, pickle.HIGHEST_PROTOCOL)
        except Exception:
            message = self._drop_unpicklable(jobs)
        with self._sending:
            connection = self._connection
            if connection is None:
                return  # lost meanwhile: the receiver has failed these jobs
            try:
                connection.send_bytes(message)
            except OSError:
                connection.close()  # the receiver fails every pending job

    def _drop_unpicklable(self, jobs: list[_Sent]) -> bytes:
        """The jobs that pickle; the others fail with their pickling error."""
        good, failed = [], []
        for job in jobs:
            try:
                pickle.dumps(job, pickle.HIGHEST_PROTOCOL)
                good.append(job)
            except Exception as exc:
                with self._lock:
                    waiter = self._pending.pop(job[0], None)
                if waiter is not None:
                    failed.append((waiter, False, exc))
        _settle(failed)
        return pickle.dumps(good, pickle.HIGHEST_PROTOCOL)

    def _receive(self, connection: Connection) -> None:
        while True:
            try:
                replies = pickle.loads(connection.recv_bytes())
            except (EOFError, OSError):
                break
            answers = []
            for job_id, ok, value in replies:
                with self._lock:
                    waiter = self._pending.pop(job_id, None)
                if waiter is not None:
                    answers.append((waiter, ok, value if ok else _rebuild(value)))
            _settle(answers)
        with self._lock:  # the writer went away: nobody will answer these
            if self._connection is connection:
                self._connection = None
            pending, self._pending = self._pending, {}
        gone = WriterUnavailable(
            "server.writer_unavailable", "the writer stopped; the outcome is unknown"
        )
        _settle([(waiter, False, gone) for waiter in pending.values()])


def _settle(answers: list[tuple[_Waiter, bool, Any]]) -> None:
    """Give each waiter its result (ok) or exception: an event loop's all in one wake-up."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for waiter, ok, value in answers:
        if isinstance(waiter, Future):
            if ok:
                waiter.set_result(value)
            else:
                waiter.set_exception(value)
        else:
            loop, future = waiter
            by_loop.setdefault(loop, []).append((future, ok, value))
    for loop, settled in by_loop.items():
        with suppress(RuntimeError):  # that loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_settle_in_loop, settled)


def _settle_in_loop(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.done():
            continue  # the request was cancelled (its client went away)
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


_client: _Client | None = None


@dataclass
class WriterProcess:
    address: str
    process: multiprocessing.process.BaseProcess

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)
        with suppress(FileNotFoundError):
            os.unlink(self.address)


def start_writer_process() -> WriterProcess:
    """Start the server's writer process; server processes reach it at ``.address`` (which
    ``gonghui serve`` hands them as ``GONGHUI_HOT_WRITER_SOCKET``)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    address = str((settings.data_dir / "hot-writer.sock").resolve())
    with suppress(FileNotFoundError):
        os.unlink(address)
    process = multiprocessing.get_context("spawn").Process(
        target=_writer_main, args=(address, os.getpid()), name="gonghui-writer", daemon=True
    )
    process.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(address):
        if not process.is_alive() or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the hot writer process did not start")
        time.sleep(0.05)
    return WriterProcess(address, process)


def _remote() -> _Client | None:
    """This process's client of the writer process, if the server runs one."""
    global _client
    address = get_settings().hot_writer_socket
    if not address:
        return None
    if _client is None or _client._address != address:
        _client = _Client(address)
    return _client


def _submit(op: Callable[..., T], kwargs: dict[str, Any]) -> Future[T]:
    client = _remote()
    return _writer.submit(op, kwargs) if client is None else client.submit(op, kwargs)


def run(op: Callable[..., T], /, **kwargs: Any) -> T:
    """``op(session, **kwargs)`` in the writer; return once committed (blocks the thread)."""
    return _submit(op, kwargs).result()


async def run_async(op: Callable[..., T], /, **kwargs: Any) -> T:
    """``op(session, **kwargs)`` in the writer; resume once committed."""
    client = _remote()
    if client is None:
        return await asyncio.wrap_future(_writer.submit(op, kwargs))
    return cast(T, await client.submit_async(op, kwargs))

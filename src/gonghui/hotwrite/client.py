"""A server process's side of the writer process: submit jobs, await their answers.

``run`` and ``run_async`` hand a job to the writer process when the server runs one
(``GONGHUI_HOT_WRITER_SOCKET``), else to this process's own writer thread (tests, CLI
commands). If the writer process is gone, every job waiting on it, and every job after,
fails with :class:`WriterUnavailable` (503): its outcome is unknown, never silently lost.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from multiprocessing.connection import Client as Connect
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

from gonghui.errors import DomainError
from gonghui.hotwrite import registry
from gonghui.hotwrite.transport import Sent, rebuild
from gonghui.hotwrite.writer import local_writer
from gonghui.observability import request_id_var
from gonghui.settings import get_settings

T = TypeVar("T")

# A job waiting for its answer: a thread's future, or an event loop's.
_Waiter = Future[Any] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class WriterUnavailable(DomainError):
    status_code = 503


class Client:
    """A server process's connection to the writer process (shared by its threads and its
    event loop). A thread's job goes out at once; an event loop's jobs go out together, all
    those submitted in one turn of the loop in one message. Answers come back in messages
    of all that is ready, read by a receiver thread, and an event loop is woken once per
    message, not once per answer. So a burst costs a few system calls, not two per job."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._lock = threading.Lock()  # the connection and the pending jobs
        self._sending = threading.Lock()
        self._connection: Connection | None = None
        self._pending: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        self._pid = 0
        # Jobs an event loop submitted this turn, sent at its next turn.
        self._unsent: dict[asyncio.AbstractEventLoop, list[Sent]] = {}

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
    ) -> Sent | None:
        """The job as sent, now awaited; None if there is no writer to send it to."""
        module, qualname = registry.name_of(op)
        with self._lock:
            try:
                self._connect()
            except OSError as exc:
                _settle([(waiter, False, WriterUnavailable("server.writer_unavailable", f"{exc}"))])
                return None
            job_id = next(self._ids)
            self._pending[job_id] = waiter
        return (job_id, module, qualname, kwargs, request_id_var.get())

    def _connect(self) -> None:
        if self._connection is None or self._pid != os.getpid():
            self._connection = Connect(self.address, family="AF_UNIX")
            self._pid = os.getpid()
            threading.Thread(
                target=self._receive,
                args=(self._connection,),
                name="hot-writer-replies",
                daemon=True,
            ).start()

    def _send(self, jobs: list[Sent]) -> None:
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

    def _drop_unpicklable(self, jobs: list[Sent]) -> bytes:
        """The jobs that pickle; the others fail with a TypeError naming the operation."""
        good, failed = [], []
        for job in jobs:
            try:
                pickle.dumps(job, pickle.HIGHEST_PROTOCOL)
                good.append(job)
            except Exception as exc:
                with self._lock:
                    waiter = self._pending.pop(job[0], None)
                if waiter is not None:
                    error = TypeError(
                        f"the arguments of {job[1]}.{job[2]} cannot be sent to the writer: {exc}"
                    )
                    error.__cause__ = exc
                    failed.append((waiter, False, error))
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
                    answers.append((waiter, ok, value if ok else rebuild(value)))
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


_client: Client | None = None


def _remote() -> Client | None:
    """This process's client of the writer process, if the server runs one."""
    global _client
    address = get_settings().hot_writer_socket
    if not address:
        return None
    if _client is None or _client.address != address:
        _client = Client(address)
    return _client


def _submit(op: Callable[..., T], kwargs: dict[str, Any]) -> Future[T]:
    client = _remote()
    return local_writer.submit(op, kwargs) if client is None else client.submit(op, kwargs)


def run(op: Callable[..., T], /, **kwargs: Any) -> T:
    """``op(session, **kwargs)`` in the writer; return once committed (blocks the thread)."""
    return _submit(op, kwargs).result()


async def run_async(op: Callable[..., T], /, **kwargs: Any) -> T:
    """``op(session, **kwargs)`` in the writer; resume once committed."""
    client = _remote()
    if client is None:
        return await asyncio.wrap_future(local_writer.submit(op, kwargs))
    return cast(T, await client.submit_async(op, kwargs))

"""The writer process: one process runs the batching writer for every server process.

``gonghui serve`` starts it (:func:`start_writer_process`); every server process hands it
its jobs over a Unix socket (:mod:`gonghui.hotwrite.client`), so there is one writer for
the whole server, whose batches never wait for a busy request thread to let go of the
interpreter lock. A job is named, not shipped: an operation of
:mod:`gonghui.hotwrite.registry` and picklable keyword arguments. Answers go back per
batch, once it is committed, with each job's result or its error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, Listener
from typing import Any, cast

from gonghui import heap
from gonghui.hotwrite import registry
from gonghui.hotwrite.writer import Job, local_writer
from gonghui.observability import configure_logging
from gonghui.settings import get_settings

log = logging.getLogger(__name__)

# A job as a server process sends it: (id, module, operation, keyword arguments, the id of
# the request that submitted it).
Sent = tuple[int, str, str, dict[str, Any], str | None]
# An exception as it travels: (module, class, args, attributes).
Portable = tuple[str, str, tuple[Any, ...], dict[str, Any]]
# An answer: (job id, ok, the result if ok else the Portable error).
Answer = tuple[int, bool, Any]

# How long the writer waits for a server process to take its answers before it gives that
# process up (a stopped process): the others' batches wait that long at most, once.
ANSWER_TIMEOUT_S = 1.0


def portable(exc: BaseException) -> Portable:
    """An exception as (class, args, attributes), rebuilt without calling ``__init__``
    (a DomainError's signature is not its ``args``)."""
    cls = type(exc)
    state = (cls.__module__, cls.__qualname__, exc.args, dict(vars(exc)))
    try:
        pickle.dumps(state)
    except Exception:
        return ("builtins", "RuntimeError", (f"{cls.__name__}: {exc}",), {})
    return state


def rebuild(state: Portable) -> BaseException:
    module, qualname, args, attributes = state
    cls = cast(type[BaseException], registry.resolve(module, qualname))
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


def _writer_main(address: str, parent: int, extra_modules: Sequence[str]) -> None:
    _die_with_parent()
    if os.getppid() != parent:
        return
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    registry.load(extra_modules)
    heap.freeze_startup_objects()
    listener = Listener(address, family="AF_UNIX")
    os.chmod(address, 0o600)
    while True:
        connection = listener.accept()
        threading.Thread(target=_serve, args=(connection,), daemon=True).start()


def _answers(jobs: list[Job]) -> bytes:
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


def _failed(tag: int, error: BaseException) -> Answer:
    return (tag, False, portable(error))


def _sendable(answer: Answer) -> Answer:
    try:
        pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return _failed(answer[0], exc)
    return answer


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

    def answer(jobs: list[Job]) -> None:
        send(_answers(jobs))

    try:
        while True:
            try:
                jobs: list[Sent] = pickle.loads(connection.recv_bytes())
            except (EOFError, OSError):
                return
            for job_id, module, qualname, kwargs, request_id in jobs:
                try:
                    op = registry.operation(module, qualname)
                except Exception as exc:
                    send(pickle.dumps([_failed(job_id, exc)], pickle.HIGHEST_PROTOCOL))
                    continue
                local_writer.submit(op, kwargs, tag=job_id, sink=answer, request_id=request_id)
    finally:
        with sending:
            gone = True
            connection.close()
            sock.close()


@dataclass
class WriterProcess:
    address: str
    process: multiprocessing.process.BaseProcess

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)
        with suppress(FileNotFoundError):
            os.unlink(self.address)


def start_writer_process(*, extra_modules: Sequence[str] = ()) -> WriterProcess:
    """Start the server's writer process; server processes reach it at ``.address`` (which
    ``gonghui serve`` hands them as ``GONGHUI_HOT_WRITER_SOCKET``). ``extra_modules`` adds
    modules of operations to the registry's (tests)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    address = str((settings.data_dir / "hot-writer.sock").resolve())
    with suppress(FileNotFoundError):
        os.unlink(address)
    process = multiprocessing.get_context("spawn").Process(
        target=_writer_main,
        args=(address, os.getpid(), tuple(extra_modules)),
        name="gonghui-writer",
        daemon=True,
    )
    process.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(address):
        if not process.is_alive() or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the hot writer process did not start")
        time.sleep(0.05)
    return WriterProcess(address, process)

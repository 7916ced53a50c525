"""The unit of work for members' hot writes (draws, quiz submissions, claims).

On SQLite only one writer commits at a time anyway. Left to SQLite, every waiting writer
polls in the busy handler, which sleeps in growing steps up to 100 ms: under a burst one
process keeps re-taking the lock while the other's writers sleep, and latency explodes.
So hot writers queue in the kernel instead: a thread lock within the process, then an
exclusive ``flock`` on a lock file in the data directory across processes (released by
the kernel if the process dies). PostgreSQL needs none of this: row locks order writers.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from sqlalchemy.orm import Session

from gonghui.db import unit_of_work
from gonghui.settings import get_settings

_thread_lock = threading.Lock()
# One descriptor per process (flock locks belong to the open file description, so
# threads sharing it would not exclude each other: the thread lock covers that).
_lock_fd: tuple[int, int] | None = None


def _process_lock_fd() -> int:
    global _lock_fd
    pid = os.getpid()
    if _lock_fd is None or _lock_fd[0] != pid:  # reopen after a fork
        settings = get_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = settings.data_dir / "hot-writer.lock"
        _lock_fd = (pid, os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    return _lock_fd[1]


@cache
def _on_sqlite() -> bool:
    return get_settings().is_sqlite


@contextmanager
def member_write() -> Iterator[Session]:
    """A write transaction committed before the block returns (and so before the reply)."""
    if not _on_sqlite():
        with unit_of_work() as session:
            yield session
        return
    with _thread_lock:
        fd = _process_lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with unit_of_work() as session:
                yield session
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

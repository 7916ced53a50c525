"""``gonghui serve`` as a separate process: for tests that need several server processes,
a multi-worker server, or one to kill with SIGKILL and start again.

By default it serves the test's own database and data directory; load tests give it a
data directory (and database) of its own. It runs in a session of its own, so ``kill``
takes the whole process group (master and workers) at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gonghui import invalidation
from gonghui.settings import get_settings

_GONGHUI = Path(sys.executable).parent / "gonghui"
_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Process:
    """A ``gonghui`` command in a session of its own (so ``kill`` takes its whole process
    group), its output in ``log_path``; subclasses say how to tell it is up."""

    what = "process"
    # How long a SIGTERM may take before the process group is killed.
    stop_timeout_s = 30.0

    def __init__(self, *, env: dict[str, str], log_path: Path) -> None:
        self.env = {
            **os.environ,
            "GONGHUI_ENV": "test",
            "GONGHUI_LOG_LEVEL": "WARNING",
            **env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def _launch(self, argv: list[str], up: Callable[[subprocess.Popen[bytes]], bool]) -> None:
        """Start ``gonghui <argv>`` and wait until ``up(process)`` says it runs."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(_GONGHUI), *argv],
                cwd=_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.what} exited: {self.log_tail()}")
            if up(self.process):
                return
            time.sleep(0.1)  # polling another process's start, bounded above
        self.kill()
        raise RuntimeError(f"{self.what} not up in {READY_TIMEOUT_S}s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        try:
            self._signal(signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=self.stop_timeout_s)
        self.process = None

    def log_tail(self) -> str:
        path = self.log_path
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class ServerProcess(_Process):
    what = "server"

    def __init__(
        self,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        database_url: str | None = None,
    ) -> None:
        settings = get_settings()
        self.data_dir = data_dir or settings.data_dir
        self.database_url = settings.database_url if database_url is None else database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        super().__init__(
            env={
                "GONGHUI_DATA_DIR": str(self.data_dir),
                "GONGHUI_DATABASE_URL": self.database_url,
                "GONGHUI_PUBLIC_BASE_URL": self.url,
                **(env or {}),
            },
            log_path=self.data_dir / f"server-{self.port}.log",
        )

    def start(self, *, until: str = "/readyz") -> ServerProcess:
        """Start, and wait until ``until`` answers 200 (``/healthz`` for a server that is
        expected to be alive but not ready)."""

        def answers(_process: subprocess.Popen[bytes]) -> bool:
            try:
                return httpx.get(f"{self.url}{until}", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        argv = ["serve", "--skip-migrate", "--port", str(self.port)]
        self._launch([*argv, "--workers", str(self.workers)], answers)
        return self


class WorkerProcess(_Process):
    """``gonghui worker`` on the test's database (and Redis, when the run has one)."""

    what = "worker"
    stop_timeout_s = 60.0

    def __init__(self, *, env: dict[str, str] | None = None, threads: int = 4) -> None:
        settings = get_settings()
        self.threads = threads
        super().__init__(
            env={
                "GONGHUI_DATA_DIR": str(settings.data_dir),
                "GONGHUI_DATABASE_URL": settings.database_url,
                "GONGHUI_REDIS_URL": settings.redis_url,
                **(env or {}),
            },
            log_path=settings.data_dir / f"worker-{id(self)}.log",
        )

    def start(self) -> WorkerProcess:
        """Start, and wait until the worker has registered (it beats from then on)."""
        from sqlalchemy import select

        from gonghui.db import unit_of_work
        from gonghui.tasks.models import Worker

        def registered(process: subprocess.Popen[bytes]) -> bool:
            with unit_of_work(read_only=True) as session:
                return (
                    session.scalar(select(Worker.id).where(Worker.pid == process.pid)) is not None
                )

        self._launch(["worker", "--threads", str(self.threads)], registered)
        return self


def settles(answers: Callable[[int], set[Any]], expected: Any) -> None:
    """After a change made through another process: until ``answers(4)`` (four answers,
    each on a new connection, so from either worker of a ServerProcess) is ``{expected}``,
    within the change feed's lag and a margin; then, past the lag, every worker must have
    it, so twelve more answers are checked (the four may all have come from one worker)."""
    changed_at = time.monotonic()
    while answers(4) != {expected}:
        assert time.monotonic() - changed_at < invalidation.FEED_MAX_LAG_S + 5
        time.sleep(0.1)
    time.sleep(max(0.0, changed_at + invalidation.FEED_MAX_LAG_S + 0.5 - time.monotonic()))
    assert answers(12) == {expected}

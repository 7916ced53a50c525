"""``gonghui serve`` as a separate process on the test database: for tests that need
several server processes, or to kill one with SIGKILL and start it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gonghui.settings import get_settings

_GONGHUI = Path(sys.executable).parent / "gonghui"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = get_settings()
        self.env = {
            **os.environ,
            "GONGHUI_ENV": "test",
            "GONGHUI_DATA_DIR": str(settings.data_dir),
            "GONGHUI_DATABASE_URL": settings.database_url,
            "GONGHUI_PUBLIC_BASE_URL": self.url,
            "GONGHUI_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> ServerProcess:
        argv = [str(_GONGHUI), "serve", "--skip-migrate", "--port", str(self.port)]
        argv += ["--workers", str(self.workers)]
        self.process = subprocess.Popen(
            argv, env=self.env, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

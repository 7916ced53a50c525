"""A redis-server of a test's own, started by scripts/redis-throwaway.sh: for tests that
kill it (SIGKILL) and start it again on the same port."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import REDIS_SCRIPT


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie no one reaped is gone too


class RedisProcess:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gonghui-redis-"))
        self.url = ""

    def start(self) -> RedisProcess:
        """Start it (again: on the port it had)."""
        self.url = subprocess.run(
            [str(REDIS_SCRIPT), "start", str(self.dir)], check=True, capture_output=True, text=True
        ).stdout.strip()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs; clients' connections drop."""
        pid = int((self.dir / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _running(pid):  # it is not our child: nothing to wait for but its pid
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server {pid} survived SIGKILL")
            time.sleep(0.01)

    def stop(self) -> None:
        subprocess.run([str(REDIS_SCRIPT), "stop", str(self.dir)], check=False)

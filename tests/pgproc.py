"""A PostgreSQL cluster of a test's own, started by scripts/pg-throwaway.sh: for tests that
stop it as a crash would and start it again on the same port."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from tests.conftest import PG_SCRIPT


class PostgresProcess:
    def __init__(self) -> None:
        # Not under pytest's tmp_path: the cluster runs as the postgres user, who must be
        # able to reach its directory.
        self.dir = Path(tempfile.mkdtemp(prefix="gonghui-pg-"))
        self.url = ""

    def start(self) -> PostgresProcess:
        """Start it (again: the same cluster on the port it had, after crash recovery)."""
        self.url = self._script("start")
        return self

    def crash(self) -> None:
        """Stop it in immediate mode, as a crash would: no checkpoint, every client's
        connection dropped at once."""
        self._script("crash")

    def stop(self) -> None:
        subprocess.run([str(PG_SCRIPT), "stop", str(self.dir)], check=False)

    def _script(self, command: str) -> str:
        done = subprocess.run(
            [str(PG_SCRIPT), command, str(self.dir)], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg-throwaway.sh {command} failed: {done.stderr}")
        return done.stdout.strip()

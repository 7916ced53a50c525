"""One sandboxed worker process: bubblewrap namespaces around the system Python running
:mod:`gonghui.baas.functions.runner`.

What the code inside can see and do:
- a read-only ``/usr`` (the system Python and its standard library), an empty ``/tmp``
  (a size-limited tmpfs, the only writable place), its own ``/proc`` and a minimal ``/dev``;
  nothing of the server's data directory, packages, secrets or environment (``--clearenv``);
- no network (a new, empty network namespace), its own PID, IPC, UTS and user namespaces,
  no further user namespaces, killed with the server (``--die-with-parent``);
- limits on address space, CPU time (per invocation), open files, file size and processes.
  When the server runs as root each worker runs under its own unprivileged uid, so the
  process limit counts only that worker's processes (RLIMIT_NPROC is not enforced for root).

Where bubblewrap is missing or cannot create namespaces, workers refuse to start unless the
deployment trusts the code of the app's org (``functions_trusted_orgs``, or every org with
``functions_trust_unsandboxed``): then only the limits apply.
See https://github.com/containers/bubblewrap for the options used.
"""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from gonghui.errors import DomainError

log = logging.getLogger("gonghui.functions")
_RUNNER_SOURCE = (Path(__file__).parent / "runner.py").read_text()
_SPAWN_TIMEOUT_S = 10.0
_MAX_MESSAGE = 4 * 1024 * 1024
# Unprivileged uids for workers when the server runs as root: one per worker slot.
_UID_BASE = 2_000_100_000


class SandboxUnavailable(DomainError):
    status_code = 503


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0
    cpu_s: float = 5.0
    memory_mb: int = 256
    open_files: int = 64
    processes: int = 32
    tmp_mb: int = 16


@dataclass
class Outcome:
    """What one invocation came to."""

    status: str  # ok | error | timeout | crashed
    value: Any = None
    error: dict[str, Any] | None = None
    logs: str = ""
    duration_ms: float = 0.0
    peak_rss_kb: int = 0
    cold: bool = False


SdkHandler = Callable[[str, dict[str, Any]], Any]


class SdkRefusal(Exception):
    """A platform call refused with a code the function sees."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message


@lru_cache
def bwrap_path() -> str | None:
    """bubblewrap, if it is installed and can create namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run(
        [*_bwrap_mounts(path), "--unshare-all", "--", "/usr/bin/true"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return path if probe.returncode == 0 else None


def _bwrap_mounts(bwrap: str) -> list[str]:
    argv = [bwrap, "--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        if Path(f"/usr/{name}").is_dir():
            argv += ["--symlink", f"usr/{name}", f"/{name}"]
    return argv


def _bwrap_argv(bwrap: str, python: str, limits: Limits) -> list[str]:
    argv = _bwrap_mounts(bwrap) + [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin",
        "--setenv", "HOME", "/tmp",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--chdir", "/tmp",
        "--",
    ]  # fmt: skip
    return [*argv, python, "-I", "-S", "-c", _RUNNER_SOURCE]


def _limits_argv(limits: Limits, *, own_uid: bool) -> list[str]:
    """prlimit(1) sets the limits on bubblewrap, and so on everything it starts.

    The process limit counts every process of the uid, so it is set only when the worker
    has a uid of its own (a server running as another user keeps its own processes)."""
    memory = limits.memory_mb * 1024 * 1024
    argv = ["prlimit", f"--as={memory}", f"--nofile={limits.open_files}"]
    if own_uid:
        argv.append(f"--nproc={limits.processes}")
    return [*argv, f"--fsize={limits.tmp_mb * 1024 * 1024}", "--core=0", "--"]


class Worker:
    """A warm sandboxed process that runs invocations one after another."""

    def __init__(
        self, *, python: str, limits: Limits, slot: int, trust_unsandboxed: bool = False
    ) -> None:
        self.limits = limits
        self.slot = slot
        self.runs = 0
        self.key: str | None = None
        self.idle_since = time.monotonic()
        user = _UID_BASE + slot if os.geteuid() == 0 else None
        prlimit = _limits_argv(limits, own_uid=user is not None)
        bwrap = bwrap_path()
        if bwrap is not None:
            argv = prlimit + _bwrap_argv(bwrap, python, limits)
        elif trust_unsandboxed:
            argv = [*prlimit, python, "-I", "-S", "-c", _RUNNER_SOURCE]
        else:
            raise SandboxUnavailable(
                "functions.sandbox_unavailable",
                "cloud functions need bubblewrap (Debian package 'bubblewrap') with user "
                "namespaces; install it, or trust this org's code explicitly "
                "(GONGHUI_FUNCTIONS_TRUSTED_ORGS)",
            )
        started = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
            close_fds=True,
        )
        self._buffer = b""
        ready = self._read(started + _SPAWN_TIMEOUT_S)
        if ready is None or ready.get("type") != "ready":
            self.kill()
            raise SandboxUnavailable("functions.worker_failed", "a function worker did not start")
        self.spawn_ms = (time.monotonic() - started) * 1000

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def _send(self, message: dict[str, Any]) -> bool:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message, default=str).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        return True

    def _read(self, deadline: float) -> dict[str, Any] | None:
        """The next message, or None on timeout, exit or a garbled channel."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
            if len(self._buffer) > _MAX_MESSAGE:
                return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            return None
        return message

    def invoke(
        self,
        *,
        source: str,
        event: Any,
        context: dict[str, Any],
        sdk: SdkHandler,
        timeout_s: float | None = None,
    ) -> Outcome:
        started = time.monotonic()
        deadline = started + (timeout_s or self.limits.timeout_s)
        self.runs += 1
        sent = self._send(
            {
                "type": "invoke",
                "source": source,
                "event": event,
                "context": context,
                "cpu_s": self.limits.cpu_s,
            }
        )
        outcome = Outcome(status="crashed") if not sent else self._converse(deadline, sdk)
        outcome.duration_ms = (time.monotonic() - started) * 1000
        if outcome.status != "ok":
            # A failed run may have left processes, threads or half-made state behind:
            # the next invocation gets a fresh worker.
            self.kill()
        self.idle_since = time.monotonic()
        return outcome

    def _converse(self, deadline: float, sdk: SdkHandler) -> Outcome:
        while True:
            message = self._read(deadline)
            if message is None:
                if self.alive and time.monotonic() >= deadline:
                    return Outcome(
                        status="timeout",
                        error={"code": "timeout", "message": "the function ran out of time"},
                    )
                return self._death()
            kind = message.get("type")
            if kind == "sdk":
                self._send(_answer(sdk, str(message.get("op")), message.get("args") or {}))
            elif kind == "result":
                return Outcome(
                    status="ok" if message.get("ok") else "error",
                    value=message.get("value"),
                    error=message.get("error"),
                    logs=str(message.get("logs") or ""),
                    peak_rss_kb=int(message.get("peak_rss_kb") or 0),
                )

    def _death(self) -> Outcome:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        # bubblewrap reports a child killed by signal N as exit status 128 + N.
        if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            return Outcome(
                status="timeout",
                error={"code": "cpu_limit", "message": "the function used up its CPU time"},
            )
        return Outcome(
            status="crashed",
            error={"code": "crashed", "message": f"the function's process died ({code})"},
        )


def _answer(sdk: SdkHandler, op: str, args: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"type": "sdk_result", "ok": True, "value": sdk(op, args)}
    except SdkRefusal as exc:
        return {
            "type": "sdk_result",
            "ok": False,
            "error": {"code": exc.code, "message": exc.message},
        }
    except DomainError as exc:
        return {
            "type": "sdk_result",
            "ok": False,
            "error": {"code": exc.code, "message": exc.message},
        }


@dataclass
class WorkerSpec:
    python: str = "/usr/bin/python3"
    limits: Limits = field(default_factory=Limits)
    trust_unsandboxed: bool = False

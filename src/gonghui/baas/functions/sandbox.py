"""One sandboxed worker process: bubblewrap namespaces around the system Python running
:mod:`gonghui.baas.functions.runner`.

What the code inside can see and do:
- a read-only ``/usr`` (the system Python and its standard library), an empty ``/tmp`` and
  ``/dev/shm`` (size-limited tmpfs, the only writable places), its own ``/proc`` and a
  minimal ``/dev``; nothing of the server's data directory, packages, secrets or
  environment (``--clearenv``);
- no network (a new, empty network namespace), its own PID, IPC, UTS and user namespaces,
  no further user namespaces, killed with the server (``--die-with-parent``);
- limits, whatever user the server runs as (see :mod:`.cgroups` for what holds where):
  address space per process, CPU time (per invocation), open files and file size
  (prlimit on bubblewrap); the number of processes (RLIMIT_NPROC, set by the runner
  inside the sandbox's own user namespace, where it counts only that worker's processes);
  and, in a cgroup v2 subtree, the processes and memory of the whole worker together.
  When the server runs as root each worker also runs under its own unprivileged uid.

There is no unsandboxed mode: where bubblewrap is missing or cannot create namespaces,
functions refuse to run (``functions.sandbox_unavailable``), and bubblewrap is probed
again after :data:`PROBE_RETRY`, so installing it needs no restart.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gonghui.baas.functions import cgroups
from gonghui.clock import now
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
    shm_mb: int = 16


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


# A failed probe is remembered this long (by the server clock), a working one for good.
PROBE_RETRY = timedelta(seconds=30)
_probe_lock = threading.Lock()
_probe: tuple[str | None, datetime] | None = None


def bwrap_path() -> str | None:
    """bubblewrap, if it is installed and can create namespaces here.

    A failure is not remembered for the life of the process: installing bubblewrap or
    allowing user namespaces takes effect within :data:`PROBE_RETRY`, without a restart."""
    global _probe
    with _probe_lock:
        if _probe is not None:
            path, probed_at = _probe
            if path is not None or now() - probed_at < PROBE_RETRY:
                return path
        path = _run_probe()
        if path is None:
            log.warning("bubblewrap is missing or cannot create namespaces: functions refused")
        _probe = (path, now())
        return path


def forget_probe() -> None:
    """Probe bubblewrap again on the next call (tests)."""
    global _probe
    with _probe_lock:
        _probe = None


def _run_probe() -> str | None:
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        probe = subprocess.run(
            [*_bwrap_mounts(path), "--unshare-all", "--", "/usr/bin/true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
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
        # --dev's own /dev/shm would be an unbounded tmpfs (its pages count against no
        # process's address space).
        "--size", str(limits.shm_mb * 1024 * 1024), "--tmpfs", "/dev/shm",
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
    # The runner sets RLIMIT_NPROC to its argument inside the new user namespace.
    return [*argv, python, "-I", "-S", "-c", _RUNNER_SOURCE, str(limits.processes)]


def _limits_argv(limits: Limits) -> list[str]:
    """prlimit(1) sets the per-process limits on bubblewrap, and so on everything it starts.

    Not the process limit: set here it would count every process of the server's uid (and
    stop bubblewrap itself); the runner sets it inside the sandbox's user namespace, where
    the kernel counts only the processes of that namespace (Linux 5.14+ ucounts)."""
    memory = limits.memory_mb * 1024 * 1024
    return [
        "prlimit",
        f"--as={memory}",
        f"--nofile={limits.open_files}",
        f"--fsize={max(limits.tmp_mb, limits.shm_mb) * 1024 * 1024}",
        "--core=0",
        "--",
    ]


class Worker:
    """A warm sandboxed process that runs invocations one after another."""

    def __init__(self, *, python: str, limits: Limits, slot: int) -> None:
        self.limits = limits
        self.slot = slot
        self.runs = 0
        self.key: str | None = None
        self.idle_since = time.monotonic()
        user = _UID_BASE + slot if os.geteuid() == 0 else None
        bwrap = bwrap_path()
        if bwrap is None:
            raise SandboxUnavailable(
                "functions.sandbox_unavailable",
                "cloud functions run only inside bubblewrap (Debian package 'bubblewrap'), "
                "which is missing or cannot create user namespaces on this server",
            )
        argv = _limits_argv(limits) + _bwrap_argv(bwrap, python, limits)
        self.group = cgroups.worker_group(
            slot=slot, memory_mb=limits.memory_mb, processes=limits.processes
        )
        if self.group is not None:
            # The group's shell drops to the worker's uid itself, after joining the group.
            argv, user = self.group.enter_argv(argv, user=user), None
        started = time.monotonic()
        try:
            self.process = self._start(argv, user)
        except BaseException:
            if self.group is not None:
                self.group.remove()
            raise
        self._buffer = b""
        ready = self._read(started + _SPAWN_TIMEOUT_S)
        if ready is None or ready.get("type") != "ready":
            self.kill()
            raise SandboxUnavailable("functions.worker_failed", "a function worker did not start")
        self.spawn_ms = (time.monotonic() - started) * 1000

    @staticmethod
    def _start(argv: list[str], user: int | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
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
        if self.group is not None:
            self.group.remove()

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
        if self.group is not None and self.group.oom_killed():
            return Outcome(
                status="crashed",
                error={
                    "code": "memory",
                    "message": "the function's processes together used more than "
                    f"{self.limits.memory_mb} MB",
                },
            )
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

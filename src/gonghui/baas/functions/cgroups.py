"""Whole-worker limits for function sandboxes in a cgroup v2 subtree: at most N processes
(``pids.max``) and M bytes of memory, page cache and tmpfs included, for all of a worker's
processes together (``memory.max``, no swap, killed as a group when over).

What holds where (per-process limits come from :mod:`.sandbox` everywhere):

- cgroup v2 with the ``memory`` and ``pids`` controllers, given an empty cgroup directory
  the server's user may write (``GONGHUI_FUNCTIONS_CGROUP``, e.g. delegated by systemd's
  ``Delegate=yes``; it must hold no processes itself, as cgroup v2 lets only leaves hold
  processes): every worker gets a child group with the limits above, whatever user the
  server runs as.
- otherwise (cgroup v1, no such directory): no total. Each process is held to
  ``memory_mb`` of address space and a worker to ``processes`` processes, so a worker's
  memory is bounded by their product, not by ``memory_mb``; ``/tmp`` and ``/dev/shm``
  are bounded by their own sizes.

See https://docs.kernel.org/admin-guide/cgroup-v2.html for the files used.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from gonghui.settings import get_settings

log = logging.getLogger("gonghui.functions")
_CONTROLLERS = ("memory", "pids")
_names = itertools.count()
_parent_lock = threading.Lock()
# The parent directory found on first use: (path or None,).
_parent: tuple[Path | None] | None = None


@dataclass(frozen=True)
class WorkerGroup:
    """One worker's cgroup."""

    path: Path

    def enter_argv(self, argv: list[str], *, user: int | None) -> list[str]:
        """``argv`` started inside this group, before it runs anything: a shell writes its
        own pid to ``cgroup.procs`` and then becomes ``argv`` (as ``user``, when given: a
        process may only move itself while it still runs as the server's user)."""
        if user is not None:
            argv = [
                "setpriv",
                f"--reuid={user}",
                f"--regid={user}",
                "--clear-groups",
                "--",
                *argv,
            ]
        return [
            "/bin/sh",
            "-c",
            'echo $$ > "$0" && exec "$@"',
            str(self.path / "cgroup.procs"),
            *argv,
        ]

    def oom_killed(self) -> bool:
        """Whether the kernel killed processes of this group for using too much memory."""
        try:
            events = (self.path / "memory.events").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in events.splitlines() if line.strip())
        return int(counts.get("oom_kill", "0")) > 0

    def remove(self) -> None:
        try:
            (self.path / "cgroup.kill").write_text("1")
        except OSError:
            pass
        if not _rmdir(self.path):
            # Killed processes still leaving: the next new group removes it.
            with _leftovers_lock:
                _leftovers.add(self.path)


_leftovers: set[Path] = set()
_leftovers_lock = threading.Lock()


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _remove_leftovers() -> None:
    with _leftovers_lock:
        done = {path for path in _leftovers if _rmdir(path)}
        _leftovers.difference_update(done)


def _usable(parent: Path) -> bool:
    """Whether children of ``parent`` can have the memory and pids controllers."""
    try:
        available = (parent / "cgroup.controllers").read_text().split()
        if not all(c in available for c in _CONTROLLERS):
            return False
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        missing = [c for c in _CONTROLLERS if c not in enabled]
        if missing:
            # Fails (EBUSY) while processes sit in ``parent`` itself: cgroup v2 lets only
            # leaves hold processes; the operator then names an empty directory.
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in missing))
        return os.access(parent, os.W_OK)
    except OSError:
        return False


def parent_group() -> Path | None:
    """Where worker groups go, or None where whole-worker limits are unavailable."""
    global _parent
    with _parent_lock:
        if _parent is None:
            setting = get_settings().functions_cgroup
            found = Path(setting) if setting and _usable(Path(setting)) else None
            if found is None:
                log.info("no cgroup v2 directory for function workers: per-process limits")
            _parent = (found,)
        return _parent[0]


def forget_parent() -> None:
    """Look for the parent directory again on next use (tests)."""
    global _parent
    with _parent_lock:
        _parent = None


def worker_group(*, slot: int, memory_mb: int, processes: int) -> WorkerGroup | None:
    """A new group with the limits of one worker, or None where groups are unavailable."""
    parent = parent_group()
    if parent is None:
        return None
    _remove_leftovers()
    path = parent / f"gonghui-fn-{os.getpid()}-{slot}-{next(_names)}"
    try:
        path.mkdir()
        (path / "pids.max").write_text(str(processes))
        (path / "memory.max").write_text(str(memory_mb * 1024 * 1024))
        swap = path / "memory.swap.max"  # absent where the kernel accounts no swap
        if swap.exists():
            swap.write_text("0")
        # Over the limit, the whole worker goes: no half-killed function keeps running.
        (path / "memory.oom.group").write_text("1")
    except OSError as exc:
        log.warning("cannot make a function cgroup in %s: %s", parent, exc)
        WorkerGroup(path).remove()
        return None
    return WorkerGroup(path)

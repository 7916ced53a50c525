"""Resource limits of a function run, whatever user the server runs as: processes, memory
and shared memory (see gonghui.baas.functions.cgroups for what holds where)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gonghui.baas.functions import cgroups, sandbox
from gonghui.baas.functions.pool import PoolConfig, WorkerPool
from gonghui.baas.functions.sandbox import Limits, Outcome
from gonghui.settings import get_settings
from tests.baas.functions.conftest import run_handler, sandboxed_pool

LIMITS = Limits(timeout_s=10.0, cpu_s=5.0, memory_mb=128, processes=16, shm_mb=8)
# A uid that already runs many processes of its own, as a server's user does.
BUSY_UID = 2_000_099_000
MIB = 1024 * 1024

FORK = """
import os, time
forked = 0
try:
    for _ in range(event):
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        forked += 1
except BlockingIOError as exc:
    return {"forked": forked, "error": exc.strerror}
return {"forked": forked, "error": None}
"""


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    workers = sandboxed_pool(PoolConfig(min_workers=0, max_workers=2, per_key_max=2))
    yield workers
    workers.close()


def run(pool: WorkerPool, body: str, event: Any = None) -> Outcome:
    return run_handler(pool, body, event, LIMITS)


@pytest.fixture
def worker_uid_with_other_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Workers run as a uid that already has 40 processes: the situation of a server that
    does not run as root, whose own processes share the workers' uid."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start processes as another uid")
    others = [
        subprocess.Popen(["sleep", "60"], user=BUSY_UID, group=BUSY_UID, extra_groups=[])
        for _ in range(40)
    ]
    monkeypatch.setattr(sandbox, "_UID_BASE", BUSY_UID)  # every slot: the busy uid
    yield BUSY_UID
    for process in others:
        process.kill()
        process.wait()


def test_a_fork_bomb_stops_at_the_limit_even_when_the_servers_user_runs_other_processes(
    worker_uid_with_other_processes: int,
) -> None:
    one_slot = WorkerPool(PoolConfig(min_workers=0, max_workers=1))  # slot 0: the busy uid
    try:
        outcome = run(one_slot, FORK, 200)
    finally:
        one_slot.close()
    assert outcome.status == "ok", outcome
    # The limit counts the sandbox's own processes (the runner and bubblewrap's init
    # among them), not the 40 other processes of the uid.
    assert 0 < outcome.value["forked"] < LIMITS.processes
    assert outcome.value["error"] == "Resource temporarily unavailable"


def test_writing_more_than_the_cap_to_shared_memory_fails(pool: WorkerPool) -> None:
    outcome = run(
        pool,
        """
written = 0
try:
    for i in range(16):
        with open(f"/dev/shm/block{i}", "wb") as f:
            f.write(b"x" * (4 * 1024 * 1024))
        written += 4 * 1024 * 1024
except OSError as exc:
    return {"written": written, "error": exc.strerror}
return {"written": written, "error": None}
""",
    )
    assert outcome.status == "ok", outcome
    assert outcome.value["error"] == "No space left on device"
    assert outcome.value["written"] == LIMITS.shm_mb * MIB


def test_without_a_cgroup_each_child_process_is_held_to_the_memory_limit(
    pool: WorkerPool,
) -> None:
    """The fallback where no cgroup v2 directory is configured: no total, but every process
    of the function (children included) is held to ``memory_mb`` of address space."""
    outcome = run(
        pool,
        """
import os
read_end, write_end = os.pipe()
if os.fork() == 0:
    try:
        block = bytearray(200 * 1024 * 1024)
        os.write(write_end, b"allocated")
    except MemoryError:
        os.write(write_end, b"MemoryError")
    os._exit(0)
return os.read(read_end, 64).decode()
""",
    )
    assert (outcome.status, outcome.value) == ("ok", "MemoryError")


def _usable_cgroup() -> str | None:
    configured = os.environ.get("GONGHUI_TEST_FUNCTIONS_CGROUP", "")
    return configured if configured and cgroups._usable(Path(configured)) else None


@pytest.mark.skipif(
    _usable_cgroup() is None,
    reason="no cgroup v2 directory with the memory and pids controllers here "
    "(set GONGHUI_TEST_FUNCTIONS_CGROUP to a delegated one); the fallback is tested above",
)
def test_children_that_together_pass_the_memory_limit_are_killed(pool: WorkerPool) -> None:
    settings = get_settings()
    settings.functions_cgroup = _usable_cgroup() or ""
    cgroups.forget_parent()
    try:
        outcome = run(
            pool,
            """
import os, time
for _ in range(4):  # 4 x 60 MB, each under the per-process limit of 128 MB
    if os.fork() == 0:
        block = bytearray(60 * 1024 * 1024)
        time.sleep(5)
        os._exit(0)
time.sleep(5)
return "survived"
""",
        )
    finally:
        settings.functions_cgroup = ""
        cgroups.forget_parent()
    assert outcome.status == "crashed"
    assert outcome.error == {
        "code": "memory",
        "message": "the function's processes together used more than 128 MB",
    }


def test_each_worker_starts_inside_a_group_with_its_limits(
    pool: WorkerPool, tmp_path: Path
) -> None:
    """The plumbing, against a directory laid out as a delegated cgroup v2 parent: the
    group gets the limits and the worker's first process writes itself into it."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("memory pids\n")
    settings = get_settings()
    settings.functions_cgroup = str(tmp_path)
    cgroups.forget_parent()
    try:
        outcome = run(pool, "return 'inside'")
    finally:
        settings.functions_cgroup = ""
        cgroups.forget_parent()
    assert (outcome.status, outcome.value) == ("ok", "inside")
    [group] = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (group / "pids.max").read_text() == "16"
    assert (group / "memory.max").read_text() == str(128 * MIB)
    assert (group / "memory.oom.group").read_text() == "1"
    assert int((group / "cgroup.procs").read_text()) > 0

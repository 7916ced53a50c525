"""Escape attempts against the function sandbox: each one fails inside the sandbox, the
failure is reported with the function's log, and the platform keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gonghui.baas.functions.pool import PoolConfig, WorkerPool
from gonghui.baas.functions.sandbox import Limits, Outcome
from gonghui.keys import get_keys
from gonghui.settings import get_settings
from tests.baas.functions.conftest import run_handler, sandboxed_pool

LIMITS = Limits(timeout_s=3.0, cpu_s=2.0, memory_mb=256, processes=16)


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    workers = sandboxed_pool(PoolConfig(min_workers=0, max_workers=4, per_key_max=2))
    yield workers
    workers.close()


def run(pool: WorkerPool, body: str, event: Any = None, limits: Limits = LIMITS) -> Outcome:
    return run_handler(pool, body, event, limits)


def assert_still_serving(pool: WorkerPool) -> None:
    outcome = run(pool, "return event * 2", 21)
    assert (outcome.status, outcome.value) == ("ok", 42)


def test_a_function_runs_and_returns_json(pool: WorkerPool) -> None:
    outcome = run(pool, "print('hello', event)\nreturn {'sum': sum(event)}", [1, 2, 3])
    assert outcome.status == "ok"
    assert outcome.value == {"sum": 6}
    assert outcome.logs == "hello [1, 2, 3]\n"
    assert outcome.peak_rss_kb > 0


def test_reading_the_database_file_fails(pool: WorkerPool) -> None:
    db = get_settings().data_dir.resolve() / "gonghui.db"
    outcome = run(pool, f"return open({str(db)!r}, 'rb').read(16).hex()")
    assert outcome.status == "error"
    assert outcome.error is not None
    assert outcome.error["message"].startswith("FileNotFoundError")
    assert "FileNotFoundError" in outcome.logs
    assert_still_serving(pool)


def test_the_servers_environment_and_keys_are_invisible(pool: WorkerPool) -> None:
    keys_file = get_settings().data_dir.resolve() / "secrets" / "keys.json"
    get_keys()  # the file exists on the host
    assert keys_file.exists()
    outcome = run(
        pool,
        "import os\n"
        f"visible = os.path.exists({str(keys_file)!r})\n"
        "init_env = open('/proc/1/environ', 'rb').read().decode()\n"
        "return {'env': dict(os.environ), 'keys_visible': visible, 'init_env': init_env}",
    )
    assert outcome.status == "ok", outcome
    assert outcome.value["keys_visible"] is False
    assert not any(name.startswith("GONGHUI") for name in outcome.value["env"])
    assert "GONGHUI" not in outcome.value["init_env"]
    assert set(outcome.value["env"]) <= {
        "PATH",
        "HOME",
        "PWD",
        "PYTHONDONTWRITEBYTECODE",
        "LC_CTYPE",
    }


def test_opening_a_socket_to_anything_fails(pool: WorkerPool, server: str) -> None:
    port = int(server.rsplit(":", 1)[1])
    outcome = run(
        pool,
        "import socket\n"
        f"socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "return 'connected'",
    )
    assert outcome.status == "error"
    assert outcome.error is not None
    assert (
        "ConnectionRefusedError" in outcome.error["message"]
        or "OSError" in outcome.error["message"]
    )
    outside = run(
        pool, "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)\nreturn 1"
    )
    assert outside.status == "error"
    assert_still_serving(pool)


def test_a_fork_bomb_hits_the_process_limit(pool: WorkerPool) -> None:
    outcome = run(pool, "import os\nwhile True:\n    os.fork()")
    assert outcome.status == "error"
    assert outcome.error is not None
    assert "BlockingIOError" in outcome.error["message"]
    assert_still_serving(pool)


def test_allocating_4_gb_fails_with_out_of_memory(pool: WorkerPool) -> None:
    outcome = run(pool, "block = bytearray(4 * 1024 ** 3)\nreturn len(block)")
    assert outcome.status == "error"
    assert outcome.error == {"code": "memory", "message": "out of memory"}
    assert_still_serving(pool)


def test_a_busy_loop_is_stopped_by_the_cpu_limit(pool: WorkerPool) -> None:
    # A wall-clock allowance far above the CPU allowance: the CPU limit must trip first
    # however loaded the machine is.
    generous_wall = Limits(timeout_s=60.0, cpu_s=1.0, memory_mb=256, processes=16)
    outcome = run(pool, "while True:\n    pass", limits=generous_wall)
    assert outcome.status == "timeout"
    assert outcome.error is not None
    assert outcome.error["code"] == "cpu_limit"
    assert_still_serving(pool)


def test_an_idle_loop_is_stopped_by_the_wall_clock_timeout(pool: WorkerPool) -> None:
    outcome = run(pool, "import time\nwhile True:\n    time.sleep(0.5)")
    assert outcome.status == "timeout"
    assert outcome.error is not None
    assert outcome.error["code"] == "timeout"
    assert_still_serving(pool)


def test_writing_outside_the_temporary_folder_fails(pool: WorkerPool) -> None:
    outcome = run(
        pool,
        "open('/tmp/scratch.txt', 'w').write('ok')\n"
        "open('/usr/pwned.txt', 'w').write('pwned')\n"
        "return 'written'",
    )
    assert outcome.status == "error"
    assert outcome.error is not None
    assert "Read-only file system" in outcome.error["message"]
    inside = run(pool, "open('/tmp/a.txt', 'w').write('abc')\nreturn open('/tmp/a.txt').read()")
    assert (inside.status, inside.value) == ("ok", "abc")


def test_a_platform_call_is_answered_by_the_handler_bound_to_the_app(pool: WorkerPool) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def sdk(op: str, args: dict[str, Any]) -> Any:
        calls.append((op, args))
        return {"id": 7, **args["record"]}

    outcome = pool.invoke(
        key="app-1",
        source="def handler(event, context):\n"
        "    return context.table('scores').create({'points': event})\n",
        event=5,
        context={"app": 1},
        sdk=sdk,
        limits=LIMITS,
    )
    assert (outcome.status, outcome.value) == ("ok", {"id": 7, "points": 5})
    assert calls == [("records.create", {"table": "scores", "record": {"points": 5}})]

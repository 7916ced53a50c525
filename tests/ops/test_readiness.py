"""``/readyz``: ready only when the database answers and the file store takes a file; it
tells a caller which check failed and nothing else, and however often it is asked, it runs
each probe at most once at a time."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from gonghui import readiness
from gonghui.readiness import Check
from gonghui.settings import get_settings
from tests.conftest import redis_configured
from tests.ops.helpers import checks
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.database_fallback


@pytest.fixture(autouse=True)
def fresh_answer() -> Iterator[None]:
    readiness.forget()
    yield
    readiness.forget()


def test_ready_when_the_database_and_the_file_store_answer(api: httpx.Client) -> None:
    resp = api.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "checks": checks()}


@contextmanager
def store_unusable() -> Iterator[None]:
    """The configured file store cannot take a file: the local directory is a file (what a
    lost mount or a full disk looks like here), or the bucket does not exist."""
    settings = get_settings()
    if settings.storage_backend == "s3":
        bucket = settings.s3_bucket
        settings.s3_bucket = "no-such-bucket-gonghui"
        try:
            yield
        finally:
            settings.s3_bucket = bucket
        return
    files = settings.data_dir / "files"
    shutil.rmtree(files, ignore_errors=True)
    files.write_text("not a directory")
    try:
        yield
    finally:
        files.unlink()


def test_unready_when_the_file_store_cannot_take_a_file(api: httpx.Client) -> None:
    with store_unusable():
        resp = api.get("/readyz")
    assert resp.status_code == 503
    # Names and ok/failed only: no path, no error text.
    assert resp.json() == {"status": "unready", "checks": checks(storage="failed")}
    readiness.forget()
    assert api.get("/readyz").status_code == 200  # the store is back


@pytest.mark.slow
def test_a_server_whose_database_is_unreachable_is_alive_but_not_ready() -> None:
    # Port 9 (discard) on loopback: nothing listens, connections are refused.
    server = ServerProcess(
        database_url="postgresql+psycopg://gonghui@127.0.0.1:9/gonghui",
        env={"GONGHUI_BACKGROUND_WORKERS": "false"},
    ).start(until="/healthz")
    try:
        resp = httpx.get(f"{server.url}/readyz", timeout=10)
    finally:
        server.stop()
    assert resp.status_code == 503
    # The queue is a table of that database: it is down with it.
    assert resp.json() == {
        "status": "unready",
        "checks": checks(database="failed", queue="failed"),
    }


def test_a_hanging_probe_is_run_once_however_often_readiness_is_asked(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many callers while a dependency hangs: each is answered "failed" within the deadline,
    and the probe is not started again until the hung one returns (no thread per caller)."""
    started = 0
    release = threading.Event()

    def hangs() -> None:
        nonlocal started
        started += 1
        release.wait(30)

    monkeypatch.setattr(readiness, "CHECKS", [Check("queue", hangs)])
    monkeypatch.setattr(readiness, "TIMEOUT_S", 0.2)
    monkeypatch.setattr(readiness, "CACHE_S", 0.0)  # every ask is a new round
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: api.get("/readyz"), range(24)))
    finally:
        release.set()
    assert {a.status_code for a in answers} == {503}
    assert {a.text for a in answers} == {'{"status":"unready","checks":{"queue":"failed"}}'}
    assert started == 1


def test_an_answer_is_reused_for_a_second(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = 0

    def counted() -> None:
        nonlocal runs
        runs += 1

    monkeypatch.setattr(readiness, "CHECKS", [Check("database", counted)])
    monkeypatch.setattr(readiness, "CACHE_S", 3600.0)  # "a second" that cannot run out here
    for _ in range(20):
        assert api.get("/readyz").status_code == 200
    assert runs == 1
    readiness.forget()
    assert api.get("/readyz").status_code == 200
    assert runs == 2


def test_a_check_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="database"):
        readiness.add_check("database", lambda: None)


def test_redis_is_checked_when_one_is_configured(api: httpx.Client, with_redis: str) -> None:
    resp = api.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "checks": checks()}
    assert "redis" in resp.json()["checks"]


def test_unready_when_the_configured_redis_does_not_answer(
    api: httpx.Client, fresh_state: None
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with redis_configured(f"redis://127.0.0.1:{port}/0", reachable=False):
        resp = api.get("/readyz")
        expected = checks(redis="failed")
        readiness.forget()
    assert resp.status_code == 503
    assert resp.json() == {"status": "unready", "checks": expected}


def test_unready_when_a_worker_cannot_reach_its_broker(
    api: httpx.Client, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process running a worker whose Redis broker is gone is unready (its queue)."""
    from gonghui.tasks import broker, runtime

    with redis_configured(redis_url):
        runtime.start(threads=1)
        try:
            assert api.get("/readyz").json()["checks"]["queue"] == "ok"
            readiness.forget()

            def gone() -> None:
                raise OSError("Redis is gone")

            monkeypatch.setattr(broker, "ping", gone)
            resp = api.get("/readyz")
        finally:
            runtime.stop()
    assert resp.status_code == 503
    assert resp.json()["checks"]["queue"] == "failed"

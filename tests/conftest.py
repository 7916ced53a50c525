"""Test harness: a real database (SQLite, or PostgreSQL when GONGHUI_TEST_DATABASE_URL is
set), Redis when GONGHUI_TEST_REDIS_URL is set (its database is flushed before every test),
a real uvicorn server on a loopback port, and a fresh database for every test. Files go to
the local store, or to a bucket of their own on the S3 protocol server
GONGHUI_TEST_S3_ENDPOINT names (scripts/s3-throwaway.sh starts one).

Settings are read from the environment once, so the environment is fixed here, before any
gonghui module is imported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_DATA_DIR = Path(tempfile.mkdtemp(prefix="gonghui-test-"))
_PORT = _free_port()
os.environ.update(
    {
        "GONGHUI_ENV": "test",
        "GONGHUI_DATA_DIR": str(_DATA_DIR),
        "GONGHUI_PUBLIC_BASE_URL": f"http://127.0.0.1:{_PORT}",
        "GONGHUI_LOG_LEVEL": "WARNING",
        "GONGHUI_DATABASE_URL": os.environ.get("GONGHUI_TEST_DATABASE_URL", ""),
        "GONGHUI_REDIS_URL": os.environ.get("GONGHUI_TEST_REDIS_URL", ""),
        # Open API calls are written when a test flushes them, never by a thread racing
        # the database reset between tests.
        "GONGHUI_OPEN_API_USAGE_FLUSH_S": "0",
    }
)
_S3_ENDPOINT = os.environ.get("GONGHUI_TEST_S3_ENDPOINT", "")
if _S3_ENDPOINT:
    pytest.register_assert_rewrite("tests.s3server")  # a plugin (below), imported early
    from tests import s3server

    os.environ.update(
        {
            "GONGHUI_STORAGE_BACKEND": "s3",
            "GONGHUI_S3_ENDPOINT_URL": _S3_ENDPOINT,
            "GONGHUI_S3_BUCKET": s3server.new_bucket(_S3_ENDPOINT),
            "GONGHUI_S3_REGION": s3server.REGION,
            "GONGHUI_S3_ACCESS_KEY_ID": s3server.ACCESS_KEY,
            "GONGHUI_S3_SECRET_ACCESS_KEY": s3server.SECRET_KEY,
        }
    )

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import text  # noqa: E402

from gonghui import clock, invalidation, redis_conn  # noqa: E402
from gonghui.db import Base, dispose_engine, get_engine  # noqa: E402
from gonghui.integrations.sms import outbox_path  # noqa: E402
from gonghui.migrations import upgrade  # noqa: E402
from gonghui.settings import get_settings  # noqa: E402
from gonghui.tasks import broker as task_broker  # noqa: E402

pytest_plugins = ["tests.fixtures", "tests.s3server"]


def _sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """Migrate once; every test then starts from the freshly migrated state."""
    settings = get_settings()
    if not settings.is_sqlite:
        with get_engine().begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        dispose_engine()
    upgrade()
    # Subscribed before the first test, so that no test sees the feed made due midway.
    if redis_conn.configured() and not invalidation.listen(timeout_s=20):
        raise RuntimeError(f"Redis at {settings.redis_url} does not answer")
    if settings.is_sqlite:
        db = settings.data_dir / "gonghui.db"
        template = settings.data_dir / "template.db"
        dispose_engine()
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("VACUUM INTO ?", (str(template),))
    yield settings.resolved_database_url
    dispose_engine()


def _reset_database() -> None:
    settings = get_settings()
    if settings.is_sqlite:
        dispose_engine()
        db = settings.data_dir / "gonghui.db"
        for f in _sqlite_files(db):
            f.unlink(missing_ok=True)
        shutil.copyfile(settings.data_dir / "template.db", db)
        return
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with get_engine().begin() as conn:
        # User tables of baas apps are created at run time, outside Base.metadata.
        dynamic = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename LIKE 'baas\\_t\\_%'"
            )
        ).scalars()
        for name in list(dynamic):
            conn.execute(text(f'DROP TABLE "{name}" CASCADE'))
        # TRUNCATE fires no row triggers, so the append-only audit table resets too.
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _reset_redis() -> None:
    if redis_conn.configured():
        redis_conn.client().flushdb()


@pytest.fixture(autouse=True)
def fresh_state(database: str) -> Iterator[None]:
    _reset_database()
    _reset_redis()
    # What lives in the data directory beside the database goes with it: the development
    # SMS sink's outbox and the local file store.
    outbox_path().unlink(missing_ok=True)
    shutil.rmtree(get_settings().data_dir / "files", ignore_errors=True)
    if _S3_ENDPOINT:
        s3server.empty_bucket(_S3_ENDPOINT, get_settings().s3_bucket)
    clock.reset()
    invalidation.forget_all()
    yield
    clock.reset()
    invalidation.forget_all()


_ROOT = Path(__file__).resolve().parents[1]
REDIS_SCRIPT = _ROOT / "scripts" / "redis-throwaway.sh"
PG_SCRIPT = _ROOT / "scripts" / "pg-throwaway.sh"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis to test against: GONGHUI_TEST_REDIS_URL's, else a throwaway one started by
    scripts/redis-throwaway.sh for this run (so these tests always run)."""
    given = get_settings().redis_url
    if given:
        yield given
        return
    directory = Path(tempfile.mkdtemp(prefix="gonghui-redis-"))
    url = subprocess.run(
        [str(REDIS_SCRIPT), "start", str(directory)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run([str(REDIS_SCRIPT), "stop", str(directory)], check=False)


@contextlib.contextmanager
def redis_configured(url: str, *, reachable: bool = True) -> Iterator[None]:
    """This process with ``GONGHUI_REDIS_URL=url`` (empty: without Redis) inside the block:
    its client and change-feed transport are started afresh (and waited for, if
    ``reachable``), and again after."""
    settings = get_settings()
    before = settings.redis_url

    def switch(to: str, wait: bool) -> None:
        invalidation.stop_transport()
        redis_conn.reset()
        task_broker.reset()
        settings.redis_url = to
        if to and wait and not invalidation.listen(timeout_s=20):
            raise RuntimeError(f"Redis at {to} does not answer")

    switch(url, reachable)
    try:
        yield
    finally:
        switch(before, True)


@pytest.fixture
def with_redis(redis_url: str, fresh_state: None) -> Iterator[str]:
    """The test runs with Redis configured (flushed first); yields its URL."""
    with redis_configured(redis_url):
        redis_conn.client().flushdb()
        yield redis_url


@pytest.fixture
def without_redis(fresh_state: None) -> Iterator[None]:
    """The test runs on the embedded default, whatever this run configures."""
    with redis_configured(""):
        yield


@pytest.fixture
def polled_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The change feed read from its table every ``FEED_MAX_LAG_S``, Redis or not: for tests
    that commit a change as another process would, in the table only, and then move the
    clock past the lag (with Redis listening, the table is read far less often)."""
    monkeypatch.setattr(invalidation, "SUBSCRIBED_FEED_MAX_LAG_S", invalidation.FEED_MAX_LAG_S)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # running in a thread
        pass


@pytest.fixture(scope="session")
def server(database: str) -> Iterator[str]:
    """A real HTTP server in this process (so tests share its clock and caches)."""
    from gonghui.app import create_app

    config = uvicorn.Config(
        create_app(),
        host="127.0.0.1",
        port=_PORT,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    srv = _Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{_PORT}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)
    if _S3_ENDPOINT:
        with contextlib.suppress(Exception):  # the server may be gone already
            s3server.drop_bucket(_S3_ENDPOINT, os.environ["GONGHUI_S3_BUCKET"])

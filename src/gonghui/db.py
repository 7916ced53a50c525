"""Engine, declarative base, and the unit of work.

The caller that owns a unit of work (an HTTP request, a CLI command, a background job)
commits on success and rolls back on error; services never commit. Side effects that must
only happen once data is durable are registered with :func:`on_commit`.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Write transactions start
with ``BEGIN IMMEDIATE`` so that two writers queue on the database lock instead of both
reading and then failing to upgrade (a deferred transaction that later writes cannot wait
for the lock: SQLite answers SQLITE_BUSY at once to avoid a deadlock).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Dialect, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator
from starlette.concurrency import run_in_threadpool

from gonghui.errors import DomainError
from gonghui.settings import get_settings

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use gonghui.clock.now()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BigId = BigInteger().with_variant(Integer(), "sqlite")
IdPk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


_lock = threading.Lock()
_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None
_read_sessions: sessionmaker[Session] | None = None
# The engine of read-only transactions (on SQLite they begin DEFERRED: no write lock).
_read_engine: Engine | None = None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own
        # transaction handling would defer it and ignore our mode).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        # Straight to the driver: BEGIN returns no rows, and an execution through
        # SQLAlchemy (context, cursor, result, events) costs more than the statement on
        # every transaction of every request.
        statement = f"BEGIN {mode}"
        driver = conn.connection.dbapi_connection
        try:
            driver.execute(statement)
        except sqlite3.Error as exc:
            # The same wrapped error (e.g. OperationalError: database is locked) an
            # execution through SQLAlchemy raises.
            raise DBAPIError.instance(
                statement, (), exc, sqlite3.Error, dialect=conn.dialect
            ) from exc


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # As many connections as the request thread pool has threads (40): a burst of
        # writers then waits on the database lock, never also on the pool.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def get_engine() -> Engine:
    global _engine, _sessions, _read_sessions, _read_engine
    with _lock:
        if _engine is None:
            settings = get_settings()
            if settings.is_sqlite:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            _engine = make_engine(settings.resolved_database_url)
            _sessions = sessionmaker(_engine, expire_on_commit=False)
            # Reads on SQLite take no write lock; on PostgreSQL the option is ignored.
            _read_engine = _engine.execution_options(sqlite_begin="DEFERRED")
            _read_sessions = sessionmaker(_read_engine, expire_on_commit=False)
        return _engine


def dispose_engine() -> None:
    """Forget the engine (tests that switch databases, forked workers)."""
    global _engine, _sessions, _read_sessions, _read_engine
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = _sessions = _read_sessions = _read_engine = None


def new_session(*, read_only: bool = False) -> Session:
    get_engine()
    factory = _read_sessions if read_only else _sessions
    assert factory is not None
    return factory()


AfterCommit = Callable[[], None]


def on_commit(session: Session, callback: AfterCommit) -> None:
    """Run ``callback`` after the unit of work that owns ``session`` commits; never on rollback."""
    session.info.setdefault("after_commit", []).append(callback)


@contextmanager
def unit_of_work(*, read_only: bool = False) -> Iterator[Session]:
    """A session whose transaction commits when the block ends and rolls back on error.

    A :class:`DomainError` raised with ``keep_changes=True`` commits before propagating."""
    session = new_session(read_only=read_only)
    committed = False
    try:
        yield session
        session.commit()
        committed = True
    except DomainError as exc:
        if exc.keep_changes:
            session.commit()
            committed = True
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
        if committed:
            for callback in callbacks:
                callback()


async def read(fn: Callable[[Connection], T]) -> T:
    """``fn`` in a short read-only transaction on a Core connection, for a hot ``async``
    handler whose reads are Core statements (no ORM session to build, flush and close).
    On SQLite it runs in the event loop itself: a read of a local file (which in WAL mode
    never waits for a writer) costs less than handing it to a thread, and the hand-off
    makes the thread and the event loop take turns at the interpreter lock. Otherwise it
    runs on the thread pool, so that a network round trip never blocks the event loop."""
    if get_settings().is_sqlite:
        return _read(fn)
    return await run_in_threadpool(_read, fn)


def _read(fn: Callable[[Connection], T]) -> T:
    get_engine()
    engine = _read_engine
    assert engine is not None
    with engine.connect() as connection, connection.begin():
        return fn(connection)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (the atomic compare-and-set idiom)."""
    return int(cast(CursorResult[Any], result).rowcount)


def upsert_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's ``insert`` (which has ``on_conflict_do_update`` / ``_do_nothing``)."""
    return sqlite.insert if dialect == "sqlite" else postgresql.insert


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"

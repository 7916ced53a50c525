"""Engine, declarative base, and the unit of work.

The caller that owns a unit of work (an HTTP request, a CLI command, a background job)
commits on success and rolls back on error; services never commit. Side effects that must
only happen once data is durable are registered with :func:`on_commit`.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Write transactions start
with ``BEGIN IMMEDIATE`` so that two writers queue on the database lock instead of both
reading and then failing to upgrade (a deferred transaction that later writes cannot wait
for the lock: SQLite answers SQLITE_BUSY at once to avoid a deadlock). The threads of one
process queue for that lock on :data:`_write_turn` first (see :class:`_SQLiteConnection`).

A database that cannot be reached (down, restarting, its connections dropped) is not a
fault of the request: :func:`unavailable` tells such an error apart, and the request (or
hot write) is refused with 503 ``database.unavailable``, to be retried. The pool discards
every connection made before a dropped one, so service resumes once the database is back.

A read-only unit of work is read-only: the session refuses to flush a change
(:class:`ReadOnlySessionError`), and the database refuses any other write (``PRAGMA
query_only`` on SQLite, ``BEGIN READ ONLY`` on PostgreSQL). A read that must leave a trace
(an audited look at personal data) takes a write unit of work.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnExpressionArgument,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Dialect, Result, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine
from starlette.concurrency import run_in_threadpool

from gonghui.errors import DomainError, ServiceUnavailable
from gonghui.settings import get_settings

T = TypeVar("T")

# The error code of a request refused because the database cannot be reached.
UNAVAILABLE = "database.unavailable"
UNAVAILABLE_RETRY_AFTER_S = 1
# SQLSTATEs of a PostgreSQL server that dropped the connection or does not take one (yet):
# class 08 (connection exception), admin_shutdown, crash_shutdown, cannot_connect_now.
_CONNECTION_CLASS = "08"
_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})


class ReadOnlySessionError(RuntimeError):
    """A read-only unit of work was asked to write: its owner chose the wrong kind (a GET
    whose read is audited takes a write session, ``deps.WriteSessionDep``)."""


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The refusal to answer for ``exc`` if it says the database cannot be reached (the
    connection dropped, refused, or the server shutting down or starting up), else None:
    a fault worth retrying shortly, not a bug. Anything else (a constraint, a deadlock, bad
    SQL) is not this."""
    if not isinstance(exc, DBAPIError):
        return None
    # The dialect judged the connection lost; or, on PostgreSQL, psycopg reports a failed
    # connection (no SQLSTATE: nothing came from a server) or the server's own reason.
    # (SQLite reports its own errors without a SQLSTATE: none of those is a lost server.)
    lost = exc.connection_invalidated
    if not lost and isinstance(exc, OperationalError | InterfaceError):
        if not get_settings().is_sqlite:
            state = getattr(exc.orig, "sqlstate", None)
            lost = state is None or state.startswith(_CONNECTION_CLASS) or state in _SHUTDOWN_STATES
    if not lost:
        return None
    return ServiceUnavailable(
        UNAVAILABLE,
        "the database is unavailable; try again shortly (with the same Idempotency-Key)",
        retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
    )


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


class IdList(TypeDecorator[list[int]]):
    """Ids bound as one parameter: an array on PostgreSQL, a JSON array on SQLite."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(BigInteger()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: list[int] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return list(value) if dialect.name == "postgresql" else json.dumps(list(value))


class InIds(FunctionElement[bool]):
    """``column IN ids`` where the ids are one :class:`IdList` parameter (see
    :func:`in_ids`)."""

    type = Boolean()
    inherit_cache = True
    name = "in_ids"


@compiles(InIds)
def _in_json_ids(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = element.clauses
    ids_sql = compiler.process(ids, **kw)
    return f"{compiler.process(column, **kw)} IN (SELECT value FROM json_each({ids_sql}))"


@compiles(InIds, "postgresql")
def _in_array_ids(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = element.clauses
    return f"{compiler.process(column, **kw)} = ANY({compiler.process(ids, **kw)})"


def in_ids(column: ColumnExpressionArgument[int], name: str) -> InIds:
    """``column`` is one of the ids bound as ``name`` (a list of ints): fixed SQL, compiled
    once and using the column's index, however many ids there are. (An expanding ``IN``
    list is rendered anew on every execution, which costs more than a hot query.)"""
    return InIds(column, bindparam(name, type_=IdList()))


BigId = BigInteger().with_variant(Integer(), "sqlite")
IdPk = Annotated[int, mapped_column(BigId, primary_key=True, autoincrement=True)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every ``Mapped[int]`` is 64-bit: amounts reach ``types.Amount``'s 10**12 and counts
    # grow with a province's members, past PostgreSQL's 32-bit ``integer``. (SQLite's
    # INTEGER is 64-bit already; the variant keeps its rowid primary keys.)
    type_annotation_map = {
        int: BigId,
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


_lock = threading.Lock()
_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None
_read_sessions: sessionmaker[Session] | None = None
# The engine of db.read (see there).
_read_engine: Engine | None = None


# SQLite has one writer. The threads of this process wait for it here, on a lock the
# operating system hands to the next waiter the moment it is released, rather than in
# SQLite's busy handler, which polls with sleeps growing to 100 ms: under a burst of
# writes most waiters slept while the lock was free (in `make bench W=records`, creates
# from 40 threads of one process: p99 about two seconds). Another process's writers still
# meet this one in the busy handler, a turn at a time.
_write_turn = threading.Lock()


class _SQLiteConnection(sqlite3.Connection):
    """A driver connection that takes :data:`_write_turn` for a write transaction
    (:func:`_sqlite_begin`) and gives it back when the transaction ends, however it ends:
    commit, rollback (the pool's reset included) or close (an invalidated connection)."""

    holds_turn = False
    turn_timeout_s = 30.0  # as the busy timeout: then "database is locked", as SQLite says

    def take_turn(self) -> None:
        if not _write_turn.acquire(timeout=self.turn_timeout_s):
            raise sqlite3.OperationalError("database is locked")
        self.holds_turn = True

    def give_turn(self) -> None:
        if self.holds_turn and not self.in_transaction:
            self.holds_turn = False
            _write_turn.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.holds_turn:
                self.holds_turn = False
                _write_turn.release()


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
        options = conn.get_execution_options()
        _sqlite_begin(
            conn.connection,
            options.get("sqlite_begin", "IMMEDIATE"),
            bool(options.get("sqlite_query_only", False)),
            dialect=conn.dialect,
        )


def _sqlite_begin(
    fairy: Any, mode: str, query_only: bool, *, dialect: Dialect | None = None
) -> None:
    """``BEGIN <mode>`` on a pooled SQLite connection, ``PRAGMA query_only`` as asked."""
    # Straight to the driver: BEGIN returns no rows, and an execution through SQLAlchemy
    # (context, cursor, result, events) costs more than the statement on every
    # transaction of every request.
    statement = f"BEGIN {mode}"
    driver = fairy.dbapi_connection
    try:
        # query_only outlives the transaction, so it is set only when this pooled
        # connection's last transaction was of the other kind. The pool clears ``info``
        # whenever it replaces the driver's connection.
        info = fairy.info
        if info.get("query_only", False) is not query_only:
            driver.execute(f"PRAGMA query_only={int(query_only)}")
            info["query_only"] = query_only
        if mode == "DEFERRED":
            driver.execute(statement)
        else:
            driver.take_turn()
            try:
                driver.execute(statement)
            finally:
                driver.give_turn()  # unless the transaction began
    except sqlite3.Error as exc:
        # The same wrapped error (e.g. OperationalError: database is locked) an execution
        # through SQLAlchemy raises.
        raise DBAPIError.instance(
            statement, (), exc, sqlite3.Error, dialect=dialect or get_engine().dialect
        ) from exc


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # As many connections as the request thread pool has threads (40), all kept: a
        # burst of writers then waits on the database lock, never also on the pool, and no
        # request pays for opening a connection (its pragmas) and closing it again, as an
        # overflow connection would under any load past 20 requests in flight.
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "factory": _SQLiteConnection,
            },
            pool_size=40,
            max_overflow=0,
        )
        _configure_sqlite(engine)
        return engine
    # A database host that does not answer fails a connection in CONNECT_TIMEOUT_S (as
    # 503 ``database.unavailable``) rather than after the kernel's minutes of SYN retries,
    # which would hold a request thread, a readiness probe or the writer that long. The URL
    # may set its own ``connect_timeout``.
    connect_args = (
        {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT_S}
    )
    engine = create_engine(url, pool_size=20, max_overflow=20, connect_args=connect_args)
    _ping_idle_connections(engine)
    return engine


# Seconds a new PostgreSQL connection may take (libpq's ``connect_timeout``).
CONNECT_TIMEOUT_S = 5


# A pooled connection idle for longer than this is pinged before it is handed out.
IDLE_PING_S = 10.0
# When this process last met a dropped connection on the driver path (time.monotonic()):
# every connection that sat in the pool since before then is pinged at its next checkout.
_dropped_at = float("-inf")


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat in the pool: one that has
    been idle for over IDLE_PING_S is pinged at checkout, and a dead one is replaced (the
    pool retries on DisconnectionError). A connection in steady use is not pinged: unlike
    ``pool_pre_ping``, a busy server spends no round trip per checkout; if the database
    restarts under load, the statement that meets a dropped connection fails once and the
    pool discards every connection made before it (SQLAlchemy does so for its own
    executions; for :func:`driver_unit`'s, every connection idle since is pinged)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None:
            return
        if idle_since > _dropped_at and time.monotonic() - idle_since <= IDLE_PING_S:
            return
        try:
            # The dialect's own ping (as pool_pre_ping's): it leaves no transaction open.
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("an idle pooled connection is gone") from exc


def _raise_driver_error(
    dialect: Dialect, driver: Any, exc: Exception, statement: str, params: Any
) -> NoReturn:
    """Raise a driver's error as an execution through SQLAlchemy does (``IntegrityError``
    and so on); one that dropped the connection marked so (``connection_invalidated``),
    after which every connection idle in the pool is pinged before its next use. Anything
    else is raised as it is."""
    global _dropped_at
    dbapi = dialect.loaded_dbapi
    if not isinstance(exc, dbapi.Error):
        raise exc
    lost = dialect.is_disconnect(exc, driver, None)
    if lost:
        _dropped_at = time.monotonic()
    raise DBAPIError.instance(
        statement, params, exc, dbapi.Error, dialect=dialect, connection_invalidated=lost
    ) from exc


def get_engine() -> Engine:
    global _engine, _sessions, _read_sessions, _read_engine
    with _lock:
        if _engine is None:
            settings = get_settings()
            if settings.is_sqlite:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            _engine = make_engine(settings.resolved_database_url)
            _sessions = sessionmaker(_engine, expire_on_commit=False)
            # Reads on SQLite take no write lock. Either database refuses a read's write:
            # psycopg then starts the transaction with BEGIN READ ONLY (no extra round trip).
            reading = _engine.execution_options(
                **(
                    {"sqlite_begin": "DEFERRED", "sqlite_query_only": True}
                    if settings.is_sqlite
                    else {"postgresql_readonly": True}
                )
            )
            _read_sessions = sessionmaker(reading, expire_on_commit=False)
            # First, before any other before_flush hook writes on the flush's behalf.
            event.listen(_read_sessions, "before_flush", _refuse_changes, insert=True)
            # db.read keeps SQLite's transaction (one snapshot for all its statements) but
            # spares PostgreSQL's BEGIN and COMMIT, two round trips: under READ COMMITTED
            # each statement takes a snapshot of its own anyway.
            _read_engine = (
                reading
                if settings.is_sqlite
                else _engine.execution_options(isolation_level="AUTOCOMMIT")
            )
        return _engine


def current_engine() -> Engine | None:
    """The engine if this process has made it (metrics read its pool), else None."""
    return _engine


def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
    # Only a net change counts: setting an attribute to the value it holds writes nothing.
    changed = [*session.new, *session.deleted, *filter(session.is_modified, session.dirty)]
    if changed:
        names = sorted({type(obj).__name__ for obj in changed})
        raise ReadOnlySessionError(
            f"a read-only unit of work was asked to write {', '.join(names)}; "
            "give its owner a write unit of work"
        )


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


def once_per_session(session: Session, memo: str, key: Hashable, load: Callable[[], T]) -> T:
    """``load()`` read once per session for ``key`` and kept in the session's memo named
    ``memo``: what a unit of work (a group of tasks) reads again and again and does not
    change meanwhile (an org's rules, an activity's title). A session that changes what
    it holds drops the memo (``session.info.pop(memo, None)``)."""
    held: dict[Hashable, Any] = session.info.setdefault(memo, {})
    if key not in held:
        held[key] = load()
    return cast(T, held[key])


def on_rollback(session: Session, callback: AfterCommit) -> None:
    """Run ``callback`` when the unit of work that owns ``session`` ends without committing:
    to undo what lives outside the database (a stored file no row will point to)."""
    session.info.setdefault("after_rollback", []).append(callback)


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
        undo: list[AfterCommit] = session.info.pop("after_rollback", [])
        for callback in callbacks if committed else undo:
            callback()


async def read(fn: Callable[[Connection], T]) -> T:
    """``fn`` reading through a Core connection (no ORM session to build, flush and close),
    for a hot ``async`` handler: on SQLite in one read transaction, on PostgreSQL statement
    by statement (see ``_read_engine``). On SQLite it runs in the event loop itself: a read
    of a local file (which in WAL mode never waits for a writer) costs less than handing it
    to a thread, and the hand-off makes the thread and the event loop take turns at the
    interpreter lock. Otherwise it runs on the thread pool, so that a network round trip
    never blocks the event loop."""
    return await bounded_read(functools.partial(read_sync, fn))


async def bounded_read(fn: Callable[[], T]) -> T:
    """``fn()``, a read whose cost is bounded (by id, one page): in the event loop itself
    on SQLite, on the thread pool on PostgreSQL (see :func:`read`)."""
    if get_settings().is_sqlite:
        return fn()
    return await run_in_threadpool(fn)


def read_sync(fn: Callable[[Connection], T]) -> T:
    """:func:`read` in the calling thread, for a sync handler (already on the thread pool)."""
    get_engine()
    engine = _read_engine
    assert engine is not None
    with engine.connect() as connection, connection.begin():
        return fn(connection)


class Prepared:
    """A statement compiled once per dialect and run on the driver's connection.

    ``Connection.execute`` of even a cached statement builds an execution context, a
    result object and its metadata and fires the engine's events on every call; for a
    primary-key read on SQLite that is several times the cost of the read itself. A
    Prepared keeps SQLAlchemy's compiled form (its SQL, the order of its parameters, the
    bind and result processors of its types, expanding parameters) and applies it to the
    driver's cursor directly: values go in and come out exactly as through ``execute``.
    Its parameters are named bind parameters and values bound in the statement itself (a
    caller's read filter, say); a driver error comes out as SQLAlchemy's wrapped one
    (``IntegrityError`` and so on). Run it inside :func:`driver_unit`."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: tuple[Dialect, _DriverForm] | None = None

    def _form(self, dialect: Dialect) -> _DriverForm:
        found = self._compiled
        if found is None or found[0] is not dialect:
            found = (dialect, _DriverForm(self.statement.compile(dialect=dialect)))
            self._compiled = found
        return found[1]

    def rows(self, unit: DriverUnit, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row as a dict by column key, values converted by the columns' types."""
        form = self._form(unit.dialect)
        cursor = form.execute(unit, params)
        try:
            fetched = cursor.fetchall()
            keys, processors = form.keys, form.result_processors(cursor)
        finally:
            cursor.close()
        out = []
        for raw in fetched:
            out.append(
                {
                    key: value if proc is None or value is None else proc(value)
                    for key, proc, value in zip(keys, processors, raw, strict=True)
                }
            )
        return out

    def run(self, unit: DriverUnit, params: dict[str, Any] | None = None) -> int:
        """Run a statement that answers no rows; the rows it matched."""
        cursor = self._form(unit.dialect).execute(unit, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def first(
        self, unit: DriverUnit, params: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        found = self.rows(unit, params)
        return found[0] if found else None

    def scalar(self, unit: DriverUnit, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row (None when there is none)."""
        row = self.first(unit, params)
        return None if row is None else next(iter(row.values()))


class _DriverForm:
    """What :class:`Prepared` takes from a compiled statement for one dialect."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.dialect: Dialect = compiled.dialect
        self.sql: str = compiled.string
        self.expanding = bool(compiled.literal_execute_params or compiled.post_compile_params)
        self.positional = bool(compiled.positional)
        self.binds: dict[str, Any] = dict(compiled._bind_processors)
        self._entries = compiled._result_columns or []
        self.keys = tuple(e.keyname for e in self._entries)
        self._processors: tuple[Any, ...] | None = None

    def result_processors(self, cursor: Any) -> tuple[Any, ...]:
        """Each column's result processor, as SQLAlchemy picks it: by the column's type and
        the driver's type code for it (taken from the first result: a statement's columns
        keep their types)."""
        found = self._processors
        if found is None:
            codes = [d[1] for d in cursor.description or ()]
            found = tuple(
                e.type._cached_result_processor(self.dialect, code)
                for e, code in zip(self._entries, codes, strict=True)
            )
            self._processors = found
        return found

    def execute(self, unit: DriverUnit, params: dict[str, Any] | None) -> Any:
        compiled = self.compiled
        values = compiled.construct_params(params, escape_names=False)
        sql, binds, order = self.sql, self.binds, compiled.positiontup
        if self.expanding:
            state = compiled._process_parameters_for_postcompile(values)
            sql, order = state.statement, state.positiontup
            binds = {**binds, **state.processors}
            values = state.parameters
        driver_params: Any
        if self.positional:
            driver_params = self.dialect.execute_sequence_format(
                [binds[k](values[k]) if k in binds else values[k] for k in order]
            )
        else:
            escaped = compiled.escaped_bind_names or {}
            driver_params = {
                escaped.get(k, k): binds[k](v) if k in binds else v for k, v in values.items()
            }
        cursor = unit.driver.cursor()
        try:
            cursor.execute(sql, driver_params)
        except Exception as exc:
            cursor.close()
            _raise_driver_error(self.dialect, unit.driver, exc, sql, driver_params)
        return cursor


@dataclass
class DriverUnit:
    """The driver's connection of a :func:`driver_unit` (or of a session's transaction,
    :meth:`of`) and its dialect."""

    driver: Any
    dialect: Dialect

    @classmethod
    def of(cls, db: Session | Connection) -> DriverUnit:
        """The driver connection of ``db``'s transaction (a session's begun if it was not,
        its pending changes flushed first): :class:`Prepared` statements then run in that
        transaction and see what it wrote. A :func:`read` callback's connection works too."""
        if isinstance(db, Session):
            db.flush()
            db = db.connection()
        return cls(db.connection.driver_connection, db.dialect)


@contextmanager
def driver_unit(*, read_only: bool = False) -> Iterator[DriverUnit]:
    """A transaction on a pooled driver connection, for :class:`Prepared` statements:
    committed when the block ends, rolled back on error. The transaction is the one a
    unit of work of the same kind opens: on SQLite ``BEGIN DEFERRED`` with ``PRAGMA
    query_only`` for a read, ``BEGIN IMMEDIATE`` for a write; on PostgreSQL a write is
    one transaction and a read runs statement by statement, as :func:`read` does (its
    statements are SELECTs: :class:`Prepared` is given no other for a read)."""
    engine = get_engine()
    dialect = engine.dialect
    sqlite_db = dialect.name == "sqlite"
    fairy = engine.raw_connection()
    driver: Any = fairy.driver_connection
    try:
        if sqlite_db:
            _sqlite_begin(fairy, "DEFERRED" if read_only else "IMMEDIATE", read_only)
        elif read_only:
            driver.autocommit = True
        try:
            yield DriverUnit(driver, dialect)
            if sqlite_db:
                driver.commit()
            elif not read_only:
                try:
                    driver.commit()
                except Exception as exc:
                    _raise_driver_error(dialect, driver, exc, "COMMIT", ())
        except BaseException as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                # Nothing left to roll back: the pool replaces the connection.
                fairy.invalidate(exc)
            elif sqlite_db:
                driver.rollback()
            elif not read_only:
                driver.rollback()
            raise
        finally:
            if not sqlite_db and read_only and fairy.is_valid:
                driver.autocommit = False
    finally:
        fairy.close()


class ReadTooLong(Exception):
    """A :func:`read_within` read reached its budget of SQLite steps and was stopped."""


# SQLite calls a connection's progress handler every this many virtual-machine steps.
_PROGRESS_EVERY = 1_000
# The steps a read may take in the event loop (:func:`read_short`). An indexed page of 50
# records takes under a thousand; a scan of 100,000 rows about 300,000 (3.7 ms on the
# 2-core test box), so a read given up here has held the loop for about 0.6 ms.
SHORT_READ_STEPS = 50_000


def read_within(fn: Callable[[DriverUnit], T], *, steps: int) -> T:
    """``fn`` in a read :func:`driver_unit` on SQLite, stopped once SQLite's virtual
    machine has taken about ``steps`` steps: raises :class:`ReadTooLong` then, with the
    transaction rolled back."""
    budget = max(1, steps // _PROGRESS_EVERY)
    calls = 0

    def progress() -> int:
        nonlocal calls
        calls += 1
        return int(calls > budget)  # non-zero: SQLite interrupts the statement

    try:
        with driver_unit(read_only=True) as unit:
            unit.driver.set_progress_handler(progress, _PROGRESS_EVERY)
            try:
                return fn(unit)
            finally:
                unit.driver.set_progress_handler(None, 0)
    except OperationalError:
        if calls > budget:
            raise ReadTooLong(f"stopped after about {steps} steps") from None
        raise


async def read_short(fn: Callable[[DriverUnit], T]) -> T:
    """``fn``'s read, for a hot ``async`` handler whose read is usually short but need not
    be (a list filtered by what the caller chose). On SQLite it is tried in the event loop
    itself (as :func:`read`) within :data:`SHORT_READ_STEPS`; a read that needs more is
    given up there and run again on the thread pool, as every read is on PostgreSQL, so
    a long read never stalls the loop and a short one skips the two hand-offs."""
    if get_settings().is_sqlite:
        try:
            return read_within(fn, steps=SHORT_READ_STEPS)
        except ReadTooLong:
            pass
    return await run_in_threadpool(driver_read, fn)


def driver_read(fn: Callable[[DriverUnit], T]) -> T:
    """``fn`` in a read :func:`driver_unit`, in the calling thread."""
    with driver_unit(read_only=True) as unit:
        return fn(unit)


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (the atomic compare-and-set idiom)."""
    return int(cast(CursorResult[Any], result).rowcount)


def upsert_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's ``insert`` (which has ``on_conflict_do_update`` / ``_do_nothing``)."""
    return sqlite.insert if dialect == "sqlite" else postgresql.insert


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"

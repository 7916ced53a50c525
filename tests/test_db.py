"""The database helpers the hot paths rely on: ids bound as one parameter, pooled
PostgreSQL connections checked only when they sat idle or a dropped one was met, and a lost
database told apart from other database errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import psycopg
import pytest
from sqlalchemy import Connection, Engine, Integer, bindparam, column, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from gonghui import db
from gonghui.audit import service as audit
from gonghui.audit.models import AuditEntry
from gonghui.orgs.models import Org
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM
from tests.fixtures import Tree

_ids_query = select(Org.id).where(db.in_ids(Org.id, "ids")).order_by(Org.id)


@pytest.mark.parametrize("size", [0, 1, 3, 6])
def test_in_ids_matches_exactly_the_listed_ids(tree: Tree, size: int) -> None:
    every = sorted(tree.codes.values())
    wanted = every[:size]
    asked = [*wanted, *wanted[:1], 10**9]  # a repeat and an id that does not exist
    with db.get_engine().connect() as connection:
        found = connection.execute(_ids_query, {"ids": asked}).scalars().all()
    assert found == wanted


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    settings = get_settings()
    if settings.is_sqlite:
        pytest.skip("pooled PostgreSQL connections only")
    engine = db.make_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    """Kill one server backend from outside the pool, as a database restart would."""
    url = get_settings().resolved_database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as outside:
        outside.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_an_idle_connection_is_pinged_and_replaced_if_it_died(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # db.read's statement-by-statement reads: the ping must leave no transaction behind.
    autocommit = postgres_engine.execution_options(isolation_level="AUTOCOMMIT")
    pid = _backend_pid(postgres_engine)  # the pool now holds this one connection
    monkeypatch.setattr(db, "IDLE_PING_S", 0.0)  # every pooled connection counts as idle
    assert _backend_pid(autocommit) == pid  # pinged, alive, handed out
    assert _backend_pid(postgres_engine) == pid
    _terminate(pid)
    assert _backend_pid(autocommit) != pid


def test_a_busy_connection_is_not_pinged_and_fails_once_when_it_died(
    postgres_engine: Engine,
) -> None:
    pid = _backend_pid(postgres_engine)
    _terminate(pid)
    with pytest.raises(DBAPIError) as failed:
        _backend_pid(postgres_engine)  # used just now: no ping, the statement meets it
    assert failed.value.connection_invalidated
    assert _backend_pid(postgres_engine) != pid  # the pool has let it go


def test_a_connection_dropped_under_a_driver_statement_fails_it_once_as_unavailable() -> None:
    if get_settings().is_sqlite:
        pytest.skip("pooled PostgreSQL connections only")
    backend_pid = db.Prepared(select(func.pg_backend_pid()))
    db.dispose_engine()  # a pool of the four connections below only
    with ExitStack() as held:  # the pool now holds four connections, all just used
        units = [held.enter_context(db.driver_unit()) for _ in range(4)]
        pids = {backend_pid.scalar(unit) for unit in units}
    for pid in pids:
        _terminate(pid)
    with pytest.raises(DBAPIError) as failed, db.driver_unit() as unit:
        backend_pid.scalar(unit)
    assert failed.value.connection_invalidated
    refusal = db.unavailable(failed.value)
    assert refusal is not None
    assert (refusal.status_code, refusal.code) == (503, db.UNAVAILABLE)
    # The others that sat in the pool meanwhile are pinged and replaced, not met by a
    # statement.
    with ExitStack() as held:
        units = [held.enter_context(db.driver_unit()) for _ in range(4)]
        assert not {backend_pid.scalar(unit) for unit in units} & pids
    assert db.get_engine().pool.checkedout() == 0


def _failure(*statements: str) -> DBAPIError:
    """The error a unit of work running ``statements`` fails with."""

    def run() -> None:
        with db.unit_of_work() as session:
            for statement in statements:
                session.execute(text(statement))

    with pytest.raises(DBAPIError) as failed:
        run()
    return failed.value


def test_a_database_error_other_than_a_lost_connection_is_not_unavailable(tree: Tree) -> None:
    missing = _failure("SELECT * FROM no_such_table")
    # SQLite calls it an OperationalError, PostgreSQL a ProgrammingError: neither is a
    # database that went away.
    assert isinstance(missing, OperationalError | ProgrammingError)
    assert db.unavailable(missing) is None
    taken = _code_of(tree.province)
    clash = _failure(f"UPDATE orgs_org SET code = '{taken}' WHERE id = {tree.city_a}")
    assert isinstance(clash, IntegrityError)
    assert db.unavailable(clash) is None
    if not get_settings().is_sqlite:  # a statement timeout: an OperationalError too
        cancelled = _failure("SET LOCAL statement_timeout = 10", "SELECT pg_sleep(1)")
        assert isinstance(cancelled, OperationalError)
        assert db.unavailable(cancelled) is None


def _names(tree: Tree) -> list[str]:
    with db.unit_of_work(read_only=True) as session:
        return list(session.scalars(select(Org.name).where(Org.id == tree.city_a)))


def test_a_read_only_unit_of_work_refuses_to_flush_a_change(tree: Tree) -> None:
    def rename_in_a_read() -> None:
        with db.unit_of_work(read_only=True) as session:
            org = session.get_one(Org, tree.city_a)
            org.name = "只读会话改的名"
            audit.record(session, actor=SYSTEM, action="test.read_only_write")

    with pytest.raises(db.ReadOnlySessionError, match="asked to write AuditEntry, Org"):
        rename_in_a_read()
    assert _names(tree) == ["广州市总工会"]
    with db.unit_of_work(read_only=True) as session:
        written = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "test.read_only_write")
        )
    assert written == 0


def test_a_read_only_unit_of_work_refuses_a_statement_that_writes(tree: Tree) -> None:
    # Past the session's own check: the database itself refuses (query_only on SQLite,
    # a READ ONLY transaction on PostgreSQL).
    with pytest.raises(DBAPIError, match="read-?only"), db.unit_of_work(read_only=True) as session:
        session.execute(update(Org).where(Org.id == tree.city_a).values(name="只读会话改的名"))
    assert _names(tree) == ["广州市总工会"]


def test_a_read_only_unit_of_work_reads_what_it_sees_and_commits_nothing(tree: Tree) -> None:
    with db.unit_of_work(read_only=True) as session:
        org = session.get_one(Org, tree.city_a)
        org.name = org.name  # the same value: no change to refuse
        seen = org.name
    assert seen == "广州市总工会"


def test_a_write_after_a_read_on_the_same_pooled_connection_is_written(tree: Tree) -> None:
    # Used one at a time, the pool hands every unit of work the same connection: the
    # reads' refusal to write must not outlive them.
    db.dispose_engine()
    before = "广州市总工会"
    for name in ("第一次改名", "第二次改名"):
        assert _names(tree) == [before]
        with db.unit_of_work() as session:
            session.execute(update(Org).where(Org.id == tree.city_a).values(name=name))
        before = name
    assert _names(tree) == ["第二次改名"]
    assert db.get_engine().pool.checkedout() == 0


# db.Prepared on db.driver_unit: the same rows and values as SQLAlchemy's own execution,
# the same errors, the same transactions.

_orgs_by_level = select(Org.id, Org.name, Org.created_at, Org.archived_at, Org.depth).where(
    Org.level == bindparam("level"), Org.id.in_(bindparam("ids", expanding=True))
)


def test_a_prepared_statement_answers_what_core_execution_does(tree: Tree) -> None:
    ids = sorted(tree.codes.values())
    params = {"level": "city", "ids": ids}
    with db.get_engine().connect() as connection:
        expected = [dict(r._mapping) for r in connection.execute(_orgs_by_level, params)]
    prepared = db.Prepared(_orgs_by_level.order_by(Org.id))
    for _ in range(2):  # compiled at the first call, reused at the second
        with db.driver_unit(read_only=True) as unit:
            found = prepared.rows(unit, params)
    assert found
    assert found == sorted(expected, key=lambda r: r["id"])
    assert all(r["created_at"].tzinfo is not None for r in found)  # UTCDateTime's processor
    with db.driver_unit(read_only=True) as unit:
        assert prepared.rows(unit, {"level": "city", "ids": []}) == []
        assert prepared.first(unit, {"level": "nowhere", "ids": ids}) is None


def test_a_prepared_statement_runs_in_a_read_s_own_transaction(tree: Tree) -> None:
    """``DriverUnit.of`` a :func:`db.read` connection: the statement sees what it sees."""
    prepared = db.Prepared(_orgs_by_level.order_by(Org.id))
    params = {"level": "city", "ids": sorted(tree.codes.values())}

    def both(connection: Connection) -> tuple[list[int], list[int]]:
        core = [r.id for r in connection.execute(_orgs_by_level.order_by(Org.id), params)]
        return core, [r["id"] for r in prepared.rows(db.DriverUnit.of(connection), params)]

    core, driver = db.read_sync(both)
    assert driver
    assert driver == core


def test_once_per_session_reads_once_per_session_and_key(tree: Tree) -> None:
    reads: list[int] = []

    def load(org_id: int) -> str | None:
        reads.append(org_id)
        return session.scalar(select(Org.name).where(Org.id == org_id))

    province = tree.province
    with db.unit_of_work(read_only=True) as session:
        first = db.once_per_session(session, "tests.names", province, lambda: load(province))
        again = db.once_per_session(session, "tests.names", province, lambda: load(province))
        db.once_per_session(session, "tests.names", -1, lambda: load(-1))  # None is held too
        db.once_per_session(session, "tests.names", -1, lambda: load(-1))
    assert first == again
    assert first
    assert reads == [province, -1]
    with db.unit_of_work(read_only=True) as session:
        db.once_per_session(session, "tests.names", province, lambda: load(province))
    assert reads == [province, -1, province]  # a new session reads again


def test_a_driver_read_refuses_to_write_and_a_write_error_rolls_back(tree: Tree) -> None:
    rename = db.Prepared(update(Org).where(Org.id == bindparam("org_id")).values(name="改名"))
    if get_settings().is_sqlite:  # PostgreSQL's driver reads run statement by statement
        with pytest.raises(DBAPIError, match="readonly"), db.driver_unit(read_only=True) as u:
            rename.run(u, {"org_id": tree.city_a})
    duplicate = db.Prepared(
        update(Org).where(Org.id == bindparam("org_id")).values(code=bindparam("code"))
    )
    taken = _code_of(tree.province)

    def rename_then_clash() -> None:
        with db.driver_unit() as unit:
            rename.run(unit, {"org_id": tree.city_a})
            duplicate.run(unit, {"org_id": tree.city_a, "code": taken})

    with pytest.raises(IntegrityError):
        rename_then_clash()
    assert _names(tree) == ["广州市总工会"]  # the rename went with the failed transaction
    with db.driver_unit() as unit:
        rename.run(unit, {"org_id": tree.city_a})
    assert _names(tree) == ["改名"]
    assert db.get_engine().pool.checkedout() == 0


def _code_of(org_id: int) -> str:
    with db.unit_of_work(read_only=True) as session:
        return session.get_one(Org, org_id).code


# 100,000 rows counted: some 300,000 steps of SQLite's virtual machine.
_long_count = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)"
    " SELECT count(*) AS counted FROM n"
).columns(column("counted", Integer))


@pytest.mark.skipif(not get_settings().is_sqlite, reason="SQLite's step budget")
def test_a_read_past_its_step_budget_is_stopped_and_leaves_its_connection_as_it_was() -> None:
    count = db.Prepared(_long_count)
    with pytest.raises(db.ReadTooLong):
        db.read_within(lambda unit: count.scalar(unit), steps=10_000)
    # Rolled back and its handler gone: the same pooled connection reads to the end.
    assert db.read_within(lambda unit: count.scalar(unit), steps=10**9) == 100_000
    with db.driver_unit(read_only=True) as unit:
        assert count.scalar(unit) == 100_000
    assert db.get_engine().pool.checkedout() == 0


sqlite_only = pytest.mark.skipif(
    not get_settings().is_sqlite, reason="SQLite's one writer: threads take turns"
)


@sqlite_only
def test_a_writer_waits_for_another_thread_s_write_and_begins_as_it_ends(tree: Tree) -> None:
    order: list[str] = []
    began = threading.Event()

    def second_writer() -> None:
        with db.unit_of_work() as session:
            session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: waits for the turn
            order.append("second began")

    with db.unit_of_work() as session:
        session.execute(text("SELECT 1"))
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(second_writer)
            began.wait(0.3)  # it cannot begin while this write is open
            assert not waiting.done()
            order.append("first commits")
            session.commit()
            waiting.result(30)
    assert order == ["first commits", "second began"]


@sqlite_only
def test_the_turn_is_given_back_however_a_write_ends(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(IntegrityError):  # rolled back
        _write_twice("DUP")
    with pytest.raises(ZeroDivisionError):  # rolled back on the driver's connection
        _fail_in_driver_unit()
    with db.driver_unit():  # committed
        pass
    engine = db.get_engine()
    fairy = engine.raw_connection()
    db._sqlite_begin(fairy, "IMMEDIATE", False)
    fairy.invalidate()  # closed in the middle of its transaction
    fairy.close()
    # Nobody holds it: a write from another thread begins at once.
    monkeypatch.setattr(db._SQLiteConnection, "turn_timeout_s", 1.0)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(_write_once).result(30) == 1
    assert engine.pool.checkedout() == 0


def _write_twice(code: str) -> None:
    with db.unit_of_work() as session:
        session.add(Org(code=code, name="a", level="city", path="/x/"))
        session.add(Org(code=code, name="b", level="city", path="/y/"))
        session.flush()


def _fail_in_driver_unit() -> None:
    with db.driver_unit() as unit:
        unit.driver.execute("SELECT 1")
        raise ZeroDivisionError


def _write_once() -> int:
    with db.unit_of_work() as session:
        return int(session.execute(text("SELECT 1")).scalar_one())


@sqlite_only
def test_a_writer_that_waits_past_the_busy_timeout_is_told_the_database_is_locked(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db._SQLiteConnection, "turn_timeout_s", 0.2)
    with db.unit_of_work() as session:
        session.execute(text("SELECT 1"))
        with ThreadPoolExecutor(1) as pool:
            with pytest.raises(OperationalError, match="database is locked"):
                pool.submit(_write_once).result(30)
    assert _write_once() == 1  # the failed BEGIN kept no turn


def test_a_database_host_that_never_answers_fails_the_connection_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host that accepts the TCP connection and then says nothing (a hung server, a
    black-holing proxy) fails the connect after ``CONNECT_TIMEOUT_S``, not never."""
    import socket

    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    monkeypatch.setattr(db, "CONNECT_TIMEOUT_S", 1)
    engine = db.make_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/nothing")
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            engine.connect().close()
        except BaseException as exc:  # noqa: BLE001 - what the connect ended with
            outcome.append(exc)

    attempt = threading.Thread(target=connect, daemon=True)
    try:
        attempt.start()
        attempt.join(timeout=30)
        assert not attempt.is_alive(), "the connection attempt still hangs"
        assert len(outcome) == 1
        assert isinstance(outcome[0], OperationalError)
    finally:
        engine.dispose()
        silent.close()

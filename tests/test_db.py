"""The database helpers the hot paths rely on: ids bound as one parameter, and pooled
PostgreSQL connections checked only when they sat idle."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from gonghui import db
from gonghui.orgs.models import Org
from gonghui.settings import get_settings
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

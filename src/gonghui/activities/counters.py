"""Per-member counters: limits, chances, wins and draw numbers, each claimed atomically.

A claim is one statement, ``INSERT ... ON CONFLICT DO UPDATE SET used = used + 1 WHERE
used < granted``: two requests racing for the last unit cannot both win it, in one
process or many, on SQLite or PostgreSQL. The statements are built once per dialect and
bound per call, on the session's connection (no ORM round trip: counters are never
loaded as objects): members' hot writes run several of them per request.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gonghui.activities.models import Counter
from gonghui.db import rowcount

_KEY = [Counter.activity_id, Counter.membership_id, Counter.scope]


def _insert(dialect: str, *, used: int) -> Any:
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    return insert(Counter).values(
        activity_id=bindparam("a"),
        membership_id=bindparam("m"),
        scope=bindparam("s"),
        used=used,
        granted=bindparam("g"),
    )


def _key_matches() -> Any:
    return (
        (Counter.activity_id == bindparam("a"))
        & (Counter.membership_id == bindparam("m"))
        & (Counter.scope == bindparam("s"))
    )


@cache
def _claim_new_or_existing(dialect: str) -> Any:
    # A new counter starts with this claim's unit used; an existing one gives a unit
    # only while one is left (no row comes back when none is).
    return (
        _insert(dialect, used=1)
        .on_conflict_do_update(
            index_elements=_KEY,
            set_={"used": Counter.used + 1},
            where=Counter.used < Counter.granted,
        )
        .returning(Counter.used)
    )


@cache
def _claim_existing() -> Update:
    return (
        update(Counter)
        .where(_key_matches(), Counter.used < Counter.granted)
        .values(used=Counter.used + 1)
    )


@cache
def _grant(dialect: str) -> Any:
    return _insert(dialect, used=0).on_conflict_do_update(
        index_elements=_KEY, set_={"granted": Counter.granted + bindparam("g")}
    )


@cache
def _next_number(dialect: str) -> Any:
    return (
        _insert(dialect, used=1)
        .on_conflict_do_update(index_elements=_KEY, set_={"used": Counter.used + 1})
        .returning(Counter.used)
    )


@cache
def _remaining() -> Select[str, int, int]:
    return select(Counter.scope, Counter.used, Counter.granted).where(
        Counter.activity_id == bindparam("a"),
        Counter.membership_id == bindparam("m"),
        Counter.scope.in_(bindparam("scopes", expanding=True)),
    )


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def claim(
    session: Session, *, activity_id: int, membership_id: int, scope: str, granted: int
) -> bool:
    """Take one unit of a counter that starts with ``granted``; False when all are used."""
    params = {"a": activity_id, "m": membership_id, "s": scope, "g": granted}
    if granted < 1:  # nothing to take unless units were granted to an existing counter
        return rowcount(session.connection().execute(_claim_existing(), params)) == 1
    return (
        session.connection().execute(_claim_new_or_existing(_dialect(session)), params).first()
        is not None
    )


def grant(
    session: Session, *, activity_id: int, membership_id: int, scope: str, units: int
) -> None:
    """Add ``units`` (chances earned by a quiz)."""
    params = {"a": activity_id, "m": membership_id, "s": scope, "g": units}
    session.connection().execute(_grant(_dialect(session)), params)


def next_number(session: Session, *, activity_id: int, membership_id: int, scope: str) -> int:
    """1, 2, 3, ... per member; the row lock orders one member's concurrent requests."""
    params = {"a": activity_id, "m": membership_id, "s": scope, "g": 0}
    number: int = session.connection().execute(_next_number(_dialect(session)), params).scalar_one()
    return number


def remaining(
    session: Session, *, activity_id: int, membership_id: int, scopes: dict[str, int]
) -> dict[str, int]:
    """Units left per scope; ``scopes`` maps a scope to the grant a missing counter would get."""
    params = {"a": activity_id, "m": membership_id, "scopes": list(scopes)}
    found = {
        row[0]: max(row[2] - row[1], 0)
        for row in session.connection().execute(_remaining(), params)
    }
    return {scope: found.get(scope, default) for scope, default in scopes.items()}

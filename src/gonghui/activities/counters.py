"""Per-member counters: limits, chances, wins and draw numbers, each claimed atomically.

A claim is one ``UPDATE ... SET used = used + 1 WHERE used < granted``: two requests racing
for the last unit cannot both win it, in one process or many, on SQLite or PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gonghui.activities.models import Counter
from gonghui.db import is_sqlite, rowcount


def _key(activity_id: int, membership_id: int, scope: str) -> ColumnElement[bool]:
    return and_(
        Counter.activity_id == activity_id,
        Counter.membership_id == membership_id,
        Counter.scope == scope,
    )


def ensure(
    session: Session, *, activity_id: int, membership_id: int, scope: str, granted: int
) -> None:
    """Create the counter with ``granted`` units unless it exists (insert-or-ignore)."""
    values = {
        "activity_id": activity_id,
        "membership_id": membership_id,
        "scope": scope,
        "used": 0,
        "granted": granted,
    }
    dialect_insert = sqlite.insert if is_sqlite(session) else postgresql.insert
    session.execute(dialect_insert(Counter).values(**values).on_conflict_do_nothing())


def claim(
    session: Session, *, activity_id: int, membership_id: int, scope: str, granted: int
) -> bool:
    """Take one unit; False when all ``granted`` units are used."""
    ensure(
        session, activity_id=activity_id, membership_id=membership_id, scope=scope, granted=granted
    )
    result = session.execute(
        update(Counter)
        .where(_key(activity_id, membership_id, scope), Counter.used < Counter.granted)
        .values(used=Counter.used + 1)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def grant(
    session: Session, *, activity_id: int, membership_id: int, scope: str, units: int
) -> None:
    """Add ``units`` (chances earned by a quiz)."""
    ensure(session, activity_id=activity_id, membership_id=membership_id, scope=scope, granted=0)
    session.execute(
        update(Counter)
        .where(_key(activity_id, membership_id, scope))
        .values(granted=Counter.granted + units)
        .execution_options(synchronize_session=False)
    )


def next_number(session: Session, *, activity_id: int, membership_id: int, scope: str) -> int:
    """1, 2, 3, ... per member; the row lock orders one member's concurrent requests."""
    ensure(session, activity_id=activity_id, membership_id=membership_id, scope=scope, granted=0)
    number = session.execute(
        update(Counter)
        .where(_key(activity_id, membership_id, scope))
        .values(used=Counter.used + 1)
        .returning(Counter.used)
        .execution_options(synchronize_session=False)
    ).scalar()
    assert number is not None
    return int(number)


def remaining(
    session: Session, *, activity_id: int, membership_id: int, scopes: dict[str, int]
) -> dict[str, int]:
    """Units left per scope; ``scopes`` maps a scope to the grant a missing counter would get."""
    rows = session.execute(
        select(Counter.scope, Counter.used, Counter.granted).where(
            Counter.activity_id == activity_id,
            Counter.membership_id == membership_id,
            Counter.scope.in_(list(scopes)),
        )
    ).all()
    found = {r[0]: max(r[2] - r[1], 0) for r in rows}
    return {scope: found.get(scope, default) for scope, default in scopes.items()}

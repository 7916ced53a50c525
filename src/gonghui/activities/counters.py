"""Per-member counters: limits, chances, wins and draw numbers, each claimed atomically.

A claim is one statement, ``INSERT ... ON CONFLICT DO UPDATE SET used = used + 1 WHERE
used < granted``: two requests racing for the last unit cannot both win it, in one
process or many, on SQLite or PostgreSQL. Every operation takes a set of members (the hot
writer claims for a whole batch of draws at once, one statement for all of them, executed
as one multi-row ``INSERT``); the one-member forms are that set of one. The statements are
built once per dialect and bound per call, on the session's connection (no ORM round trip:
counters are never loaded as objects).

On PostgreSQL several hot writers (processes, hosts) claim at once, each holding the rows
it claimed until it commits: every statement takes its members' rows in ascending member
order (the rows of a multi-row ``INSERT`` in the order given, an ``UPDATE`` through a
``SELECT ... ORDER BY ... FOR UPDATE``), so that two batches wait for each other at most
one way round and do not deadlock.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, Integer, Select, Update, bindparam, select, update
from sqlalchemy.orm import Session

from gonghui.activities.models import Counter
from gonghui.db import upsert_insert

_KEY = [Counter.activity_id, Counter.membership_id, Counter.scope]


def _insert(dialect: str, *, used: int | BindParameter[int]) -> Any:
    return upsert_insert(dialect)(Counter).values(
        activity_id=bindparam("a"),
        membership_id=bindparam("m"),
        scope=bindparam("s"),
        used=used,
        granted=bindparam("g"),
    )


def _members_match() -> Any:
    return (
        (Counter.activity_id == bindparam("a"))
        & (Counter.scope == bindparam("s"))
        & Counter.membership_id.in_(bindparam("ms", expanding=True))
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
        .returning(Counter.membership_id)
    )


@cache
def _claim_existing() -> Update:
    # The rows are locked in member order first (PostgreSQL; SQLite has one writer).
    in_order = (
        select(Counter.id).where(_members_match()).order_by(Counter.membership_id).with_for_update()
    )
    return (
        update(Counter)
        .where(Counter.id.in_(in_order), Counter.used < Counter.granted)
        .values(used=Counter.used + 1)
        .returning(Counter.membership_id)
    )


@cache
def _release() -> Update:
    return update(Counter).where(_members_match(), Counter.used > 0).values(used=Counter.used - 1)


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
        .returning(Counter.membership_id, Counter.used)
    )


@cache
def _remaining() -> Select[int, str, int, int]:
    return select(Counter.membership_id, Counter.scope, Counter.used, Counter.granted).where(
        Counter.activity_id == bindparam("a"),
        Counter.membership_id.in_(bindparam("ms", expanding=True)),
        Counter.scope.in_(bindparam("scopes", expanding=True)),
    )


@cache
def _take_amount(dialect: str) -> Any:
    # A counter of amounts (cents): ``n`` more used only while they fit under ``granted``.
    # The amount is the new row's ``used`` (``excluded``), not a parameter of the conflict
    # clause, so that the members' rows stay one multi-row INSERT (as ``org_shares._take``).
    insert = _insert(dialect, used=bindparam("n", type_=Integer))
    wanted = insert.excluded.used
    return insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={"used": Counter.used + wanted},
        where=Counter.used + wanted <= Counter.granted,
    ).returning(Counter.membership_id)


@cache
def _give_back_amount() -> Update:
    return (
        update(Counter)
        .where(
            Counter.activity_id == bindparam("a"),
            Counter.membership_id == bindparam("m"),
            Counter.scope == bindparam("s"),
            Counter.used >= bindparam("n"),
        )
        .values(used=Counter.used - bindparam("n"))
    )


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _rows(activity_id: int, members: Collection[int], scope: str, granted: int) -> list[Any]:
    """One row per member, in member order (the order their rows are locked in)."""
    return [{"a": activity_id, "m": m, "s": scope, "g": granted} for m in sorted(members)]


def claim_many(
    session: Session, *, activity_id: int, members: Collection[int], scope: str, granted: int
) -> set[int]:
    """Take one unit of each member's counter (which starts with ``granted``); returns the
    members who got one. ``members`` holds each member once."""
    if not members:
        return set()
    connection = session.connection()
    if granted < 1:  # nothing to take unless units were granted to an existing counter
        params = {"a": activity_id, "s": scope, "ms": list(members)}
        return set(connection.execute(_claim_existing(), params).scalars())
    statement = _claim_new_or_existing(_dialect(session))
    return set(connection.execute(statement, _rows(activity_id, members, scope, granted)).scalars())


def claim_each(
    session: Session, *, activity_id: int, scopes: dict[int, str], granted: int
) -> set[int]:
    """Take one unit of each member's own counter (membership id → its scope, e.g. the
    candidate a member votes for), each starting with ``granted`` (at least 1): one
    statement for all, in member order; returns the members who got one."""
    if not scopes:
        return set()
    rows = [{"a": activity_id, "m": m, "s": scopes[m], "g": granted} for m in sorted(scopes)]
    statement = _claim_new_or_existing(_dialect(session))
    return set(session.connection().execute(statement, rows).scalars())


def claim(
    session: Session, *, activity_id: int, membership_id: int, scope: str, granted: int
) -> bool:
    """Take one unit of a counter that starts with ``granted``; False when all are used."""
    return bool(
        claim_many(
            session,
            activity_id=activity_id,
            members=(membership_id,),
            scope=scope,
            granted=granted,
        )
    )


def release_many(
    session: Session, *, activity_id: int, members: Collection[int], scope: str
) -> None:
    """Give back the unit each member claimed in this transaction (a claim that the rest of
    its work then refused): rows this transaction holds already."""
    if members:
        params = {"a": activity_id, "s": scope, "ms": list(members)}
        session.connection().execute(_release(), params)


def take_amounts(
    session: Session, *, activity_id: int, scope: str, granted: int, amounts: dict[int, int]
) -> set[int]:
    """Use each member's amount (membership id → amount) of a counter of amounts that
    starts with ``granted`` (a member's subsidy cap in cents), in member order; returns the
    members whose amount fitted under ``granted`` (nothing is used for the others)."""
    rows = [
        {"a": activity_id, "m": m, "s": scope, "g": granted, "n": amounts[m]}
        for m in sorted(amounts)
        if amounts[m] <= granted
    ]
    if not rows:
        return set()
    taken = session.connection().execute(_take_amount(_dialect(session)), rows)
    return set(taken.scalars())


def give_back_amount(
    session: Session, *, activity_id: int, membership_id: int, scope: str, amount: int
) -> None:
    """Give back ``amount`` used earlier by :func:`take_amounts` (an order cancelled)."""
    params = {"a": activity_id, "m": membership_id, "s": scope, "n": amount}
    session.connection().execute(_give_back_amount(), params)


def grant(
    session: Session, *, activity_id: int, membership_id: int, scope: str, units: int
) -> None:
    """Add ``units`` (chances earned by a quiz)."""
    params = {"a": activity_id, "m": membership_id, "s": scope, "g": units}
    session.connection().execute(_grant(_dialect(session)), params)


def next_numbers(
    session: Session, *, activity_id: int, members: Collection[int], scope: str
) -> dict[int, int]:
    """Each member's next number, 1, 2, 3, ...; the row lock orders one member's requests."""
    if not members:
        return {}
    statement = _next_number(_dialect(session))
    rows = session.connection().execute(statement, _rows(activity_id, members, scope, 0))
    return dict(rows.all())


def remaining_many(
    session: Session, *, activity_id: int, members: Collection[int], scopes: dict[str, int]
) -> dict[int, dict[str, int]]:
    """Units left per member and scope; ``scopes`` maps a scope to the grant a missing
    counter would get."""
    left = {member: dict(scopes) for member in members}
    if left:
        params = {"a": activity_id, "ms": list(left), "scopes": list(scopes)}
        for member, scope, used, granted in session.connection().execute(_remaining(), params):
            left[member][scope] = max(granted - used, 0)
    return left

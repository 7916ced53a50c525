"""Each org's share of a campaign (``max_per_org``): how many of its coupons the members of
one org may hold in all, taken for a batch of claims at once and given back one at a time.

Taking is one statement, ``INSERT ... ON CONFLICT DO UPDATE SET claimed = claimed + k WHERE
claimed + k <= cap``, as the stock's ``claimed`` is taken: two batches racing for an org's
last coupons cannot both win them, in one writer or many, on SQLite or PostgreSQL; members
of different orgs never wait on one another's row (no campaign-wide lock). Claims take
their stock first and their orgs' shares after, always in that order and the shares in org
order, so two batches never wait for each other both ways round.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

from sqlalchemy import Select, Update, bindparam, select, update
from sqlalchemy.orm import Session

from gonghui.activities.voucher_grab.models import OrgShare
from gonghui.db import is_sqlite, upsert_insert


@cache
def _take(dialect: str) -> Any:
    insert = upsert_insert(dialect)(OrgShare)
    # The coupons taken are the new row's ``claimed`` (``excluded``), not a parameter of the
    # conflict clause: so the rows of every org stay one multi-row INSERT (a parameter
    # outside VALUES that differs per row makes SQLAlchemy send one statement per row).
    wanted = insert.excluded.claimed
    return (
        insert.values(activity_id=bindparam("a"), org_id=bindparam("o"), claimed=bindparam("k"))
        .on_conflict_do_update(
            index_elements=[OrgShare.activity_id, OrgShare.org_id],
            set_={"claimed": OrgShare.claimed + wanted},
            where=OrgShare.claimed + wanted <= bindparam("cap"),
        )
        .returning(OrgShare.org_id)
    )


@cache
def _create(dialect: str) -> Any:
    return (
        upsert_insert(dialect)(OrgShare)
        .values(activity_id=bindparam("a"), org_id=bindparam("o"), claimed=0)
        .on_conflict_do_nothing(index_elements=[OrgShare.activity_id, OrgShare.org_id])
    )


@cache
def _claimed(*, lock: bool) -> Select[int, int]:
    read = (
        select(OrgShare.org_id, OrgShare.claimed)
        .where(
            OrgShare.activity_id == bindparam("a"),
            OrgShare.org_id.in_(bindparam("os", expanding=True)),
        )
        .order_by(OrgShare.org_id)
    )
    return read.with_for_update() if lock else read


@cache
def _give_back() -> Update:
    return (
        update(OrgShare)
        .where(
            OrgShare.activity_id == bindparam("a"),
            OrgShare.org_id == bindparam("o"),
            OrgShare.claimed > 0,
        )
        .values(claimed=OrgShare.claimed - 1)
    )


def claimed(
    session: Session, *, activity_id: int, org_ids: Collection[int], lock: bool
) -> dict[int, int]:
    """How many coupons the members of each org hold (0 for an org with no row). With
    ``lock`` the rows are locked until the transaction ends, in org order; on PostgreSQL
    the missing ones are created first, so that no other writer takes a share meanwhile
    (SQLite has one writer)."""
    orgs = sorted(set(org_ids))
    if not orgs:
        return {}
    connection = session.connection()
    if lock and not is_sqlite(session):
        statement = _create(session.get_bind().dialect.name)
        connection.execute(statement, [{"a": activity_id, "o": org} for org in orgs])
    held = dict.fromkeys(orgs, 0)
    held.update(connection.execute(_claimed(lock=lock), {"a": activity_id, "os": orgs}).all())
    return held


def take_many(
    session: Session, *, activity_id: int, cap: int, counts: Mapping[int, int]
) -> set[int]:
    """Take ``counts[org]`` coupons of each org's share (org id → coupons, each at most
    ``cap``), in org order; returns the orgs whose coupons fitted under ``cap`` (nothing
    is taken of the others)."""
    rows = [
        {"a": activity_id, "o": org, "k": counts[org], "cap": cap}
        for org in sorted(counts)
        if 0 < counts[org] <= cap
    ]
    if not rows:
        return set()
    statement = _take(session.get_bind().dialect.name)
    return set(session.connection().execute(statement, rows).scalars())


def give_back(session: Session, *, activity_id: int, org_id: int) -> None:
    """A coupon the org's member claimed was not sent: the share has it again."""
    session.execute(_give_back(), {"a": activity_id, "o": org_id})


def max_per_org(config: dict[str, Any]) -> int | None:
    """The campaign's cap per org, from its stored config (checked when it was saved)."""
    cap = (config.get("voucher_grab") or {}).get("max_per_org")
    return None if cap is None else int(cap)

"""Each org's share of a campaign (``max_per_org``): how many of its coupons the members of
one org may hold in all, taken and given back one at a time.

Taking is one statement, ``INSERT ... ON CONFLICT DO UPDATE SET claimed = claimed + 1 WHERE
claimed < cap``, as the stock's ``claimed`` is taken: two members of one org racing for its
last coupon cannot both win it, in one writer or many, on SQLite or PostgreSQL; members of
different orgs never wait on one another's row (no campaign-wide lock). A claim takes its
stock first and its org's share after, always in that order, so two claims never wait for
each other both ways round.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Update, bindparam, update
from sqlalchemy.orm import Session

from gonghui.activities.voucher_grab.models import OrgShare
from gonghui.db import upsert_insert


@cache
def _take(dialect: str) -> Any:
    return (
        upsert_insert(dialect)(OrgShare)
        .values(activity_id=bindparam("a"), org_id=bindparam("o"), claimed=1)
        .on_conflict_do_update(
            index_elements=[OrgShare.activity_id, OrgShare.org_id],
            set_={"claimed": OrgShare.claimed + 1},
            where=OrgShare.claimed < bindparam("cap"),
        )
        .returning(OrgShare.id)
    )


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


def take(session: Session, *, activity_id: int, org_id: int, cap: int) -> bool:
    """One coupon of the org's share (``cap`` >= 1); False when its members hold ``cap``."""
    statement = _take(session.get_bind().dialect.name)
    taken = session.execute(statement, {"a": activity_id, "o": org_id, "cap": cap})
    return taken.first() is not None


def give_back(session: Session, *, activity_id: int, org_id: int) -> None:
    """A coupon the org's member claimed was not sent: the share has it again."""
    session.execute(_give_back(), {"a": activity_id, "o": org_id})


def max_per_org(config: dict[str, Any]) -> int | None:
    """The campaign's cap per org, from its stored config (checked when it was saved)."""
    cap = (config.get("voucher_grab") or {}).get("max_per_org")
    return None if cap is None else int(cap)

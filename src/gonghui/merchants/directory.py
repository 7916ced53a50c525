"""Which merchants a union voucher may name, and their names for the member to read.

Activities (a lottery's voucher prize) and the wallet sit below merchants in the layers;
this module is what they may read of them: it knows only merchants' rows and the org tree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.merchants.models import Merchant
from gonghui.orgs.models import Org
from gonghui.tenancy import subtree_condition, within


@dataclass(frozen=True)
class NamedMerchant:
    id: int
    name: str
    org_name: str


def not_open_within(session: Session, *, org_path: str, merchant_ids: Sequence[int]) -> list[int]:
    """Those of ``merchant_ids`` that are not an open merchant of the org at ``org_path`` or
    below it (unknown, closed or elsewhere: one answer for all), in the order given."""
    if not merchant_ids:
        return []
    found = set(
        session.scalars(
            select(Merchant.id)
            .join(Org, Org.id == Merchant.org_id)
            .where(Merchant.id.in_(set(merchant_ids)), Merchant.active, within(Org.path, org_path))
        )
    )
    return [m for m in merchant_ids if m not in found]


def names(session: Session, merchant_ids: Collection[int]) -> dict[int, str]:
    """The names of ``merchant_ids`` (those that exist), by id, in one query."""
    if not merchant_ids:
        return {}
    rows = session.execute(
        select(Merchant.id, Merchant.name).where(Merchant.id.in_(set(merchant_ids)))
    )
    return dict(rows.all())


def open_within(session: Session, *, org_paths: Sequence[str]) -> list[NamedMerchant]:
    """The open merchants of the subtrees at ``org_paths``, by org then name: what an
    operator may name on a voucher of an activity of theirs."""
    rows = session.execute(
        select(Merchant.id, Merchant.name, Org.name)
        .join(Org, Org.id == Merchant.org_id)
        .where(Merchant.active, subtree_condition(Org.path, list(org_paths)))
        .order_by(Org.path, Merchant.name, Merchant.id)
        .limit(500)
    )
    return [NamedMerchant(*row) for row in rows]

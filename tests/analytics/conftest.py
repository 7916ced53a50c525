"""Analytics tests: members, a lottery and draws made through the real services, and the
figures counted straight from the ledger and the participation tables to compare with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import distinct, func, select

from gonghui.activities.lottery.models import Draw
from gonghui.benefits.models import LedgerAction, LedgerEntry
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.members.idnumber import check_character
from gonghui.members.models import Membership, RosterEntry
from gonghui.orgs.models import Org, Role
from gonghui.tenancy import SYSTEM, within
from tests.activities.conftest import (
    Member,
    create_activity,
    create_member,
    draw,
    lottery_config,
)
from tests.fixtures import Staff, StaffFactory, Tree

# Roster entries that never verify: ID numbers of another district than create_member's.
_unverified = iter(range(1, 40_000))


def _unverified_id_number() -> str:
    n = next(_unverified)
    first17 = f"110102{1960 + n // 1000:04d}0101{n % 1000:03d}"
    return first17 + check_character(first17)


def add_unverified(org_id: int) -> None:
    """A person on the roster who has not verified."""
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=org_id, name="未认证", id_number=_unverified_id_number()
        )


@dataclass
class Story:
    """Province staff, a lottery of the province, members across both cities."""

    staff: Staff
    activity: dict[str, Any]
    a_members: list[Member]
    b_members: list[Member]


PRIZES = [
    {"name": "十元券", "kind": "voucher", "weight": 1, "stock": 100, "value": 1000},
    {"name": "谢谢参与", "kind": "none", "weight": 1},
]


@pytest.fixture
def story(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> Story:
    """City A: two members at its district, one at the grassroots union below; city B: two
    at its grassroots union and one person on its roster who never verified. The
    province's lottery (budget 100 元): two of A's members and one of B's draw."""
    staff = make_staff(tree.province, Role.OPERATOR)
    activity = create_activity(
        api,
        staff.headers,
        tree.province,
        config=lottery_config(PRIZES, free_draws_per_day=3),
        budget_cents=10_000,
    )
    a = [
        create_member(tree.district_a1),
        create_member(tree.district_a1),
        create_member(tree.grassroots_a1x),
    ]
    b = [create_member(tree.grassroots_b1), create_member(tree.grassroots_b1)]
    add_unverified(tree.grassroots_b1)
    for member in (a[0], a[2], b[0]):
        assert draw(api, activity["id"], member.headers).status_code == 200
    assert draw(api, activity["id"], a[0].headers).status_code == 200
    return Story(staff, activity, a, b)


@dataclass(frozen=True)
class Counted:
    roster: int
    verified: int
    active: int
    draws: int
    issued: int
    issued_amount: int


def count_directly(org_id: int) -> Counted:
    """The figures of ``org_id``'s subtree counted from the source tables themselves."""
    with unit_of_work(read_only=True) as session:
        path = session.scalar(select(Org.path).where(Org.id == org_id))
        assert path is not None
        orgs = select(Org.id).where(within(Org.path, path))
        in_subtree = Membership.org_id.in_(orgs)
        roster = session.scalar(
            select(func.count()).select_from(RosterEntry).where(RosterEntry.org_id.in_(orgs))
        )
        verified = session.scalar(select(func.count()).select_from(Membership).where(in_subtree))
        active, draws = session.execute(
            select(func.count(distinct(Draw.membership_id)), func.count())
            .join(Membership, Membership.id == Draw.membership_id)
            .where(in_subtree)
        ).one()
        issued, issued_amount = session.execute(
            select(func.count(), func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(Membership, Membership.id == LedgerEntry.membership_id)
            .where(in_subtree, LedgerEntry.action == LedgerAction.ISSUE)
        ).one()
    return Counted(roster or 0, verified or 0, active, draws, issued, int(issued_amount))

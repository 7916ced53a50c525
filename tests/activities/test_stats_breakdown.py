"""The dashboard's breakdowns: draws per hour and per member's union, within the subtree."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, timedelta

import httpx
import pytest
from sqlalchemy import select

from gonghui import clock
from gonghui.accounts import principal as principals
from gonghui.activities import stats
from gonghui.activities.lottery.models import Draw
from gonghui.db import unit_of_work
from gonghui.errors import NotFound
from gonghui.orgs.models import Role
from gonghui.tenancy import Actor
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    draw,
    lottery_config,
    staff_headers,
)
from tests.fixtures import Staff, StaffFactory, Tree


def _actor(staff: Staff) -> Actor:
    """The staff member as an actor, from a token minted now (the clock may have moved)."""
    token = staff_headers(staff)["Authorization"].removeprefix("Bearer ")
    with unit_of_work(read_only=True) as session:
        return principals.resolve(session, token).actor()


def test_draws_by_hour_and_by_union(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    prize = {"name": "五元券", "kind": "voucher", "weight": 1, "stock": 1, "value": 500}
    activity = create_activity(api, op.headers, tree.city_a, config=lottery_config([prize]))
    for org in (tree.grassroots_a1x, tree.grassroots_a1x):
        assert draw(api, activity["id"], make_member(org).headers).status_code == 200
    clock.advance(timedelta(hours=2))
    late = make_member(tree.district_a1)
    assert draw(api, activity["id"], late.headers).status_code == 200

    with unit_of_work(read_only=True) as session:
        hourly = stats.draws_by_hour(session, actor=_actor(op), activity_id=activity["id"])
        by_org = stats.draws_by_org(session, actor=_actor(op), activity_id=activity["id"])
        times = session.scalars(select(Draw.at).where(Draw.activity_id == activity["id"]))
        expected = Counter(t.replace(minute=0, second=0, microsecond=0) for t in times)
    assert [(h["hour"], h["draws"]) for h in hourly] == sorted(expected.items())
    assert sum(expected.values()) == 3
    assert len(expected) >= 2  # two hours apart
    assert all(h["hour"].tzinfo == UTC for h in hourly)
    assert [(r["org_id"], r["draws"], r["members"], r["won"]) for r in by_org] == [
        (tree.grassroots_a1x, 2, 2, 1),
        (tree.district_a1, 1, 1, 0),
    ]


def test_breakdowns_are_refused_outside_the_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    other = make_staff(tree.city_b, Role.OPERATOR)
    activity = create_activity(api, op.headers, tree.city_a)
    with unit_of_work(read_only=True) as session, pytest.raises(NotFound):
        stats.draws_by_org(session, actor=_actor(other), activity_id=activity["id"])

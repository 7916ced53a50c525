"""The SDKs against the real server: the open platform's fixtures (a member signed in on
the H5, an org's registered client), a member with a wallet, and the union's activities."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from gonghui.db import unit_of_work
from tests.fixtures import StaffFactory, Tree
from tests.openplatform.conftest import (  # noqa: F401 (fixtures used here)
    Browser,
    BrowserFactory,
    city_developer,
    member_browser,
    register_client,
)

MEMBER_SCOPE = "openid profile membership benefits:read"
CLIENT_SCOPE = f"{MEMBER_SCOPE} activities:read"


def give_points_and_a_voucher(user_id: int) -> None:
    from gonghui.benefits import service as benefits
    from gonghui.members.models import Membership

    with unit_of_work() as session:
        membership_id = session.scalar(select(Membership.id).where(Membership.user_id == user_id))
        assert membership_id is not None
        benefits.add_points(
            session, membership_id=membership_id, activity_id=None, points=30, source="test"
        )
        benefits.issue_vouchers(
            session, members=[membership_id], activity_id=None, name="十元券",
            value_cents=1000, threshold_cents=5000, valid_days=30, source="test",
        )  # fmt: skip


@dataclass(frozen=True)
class UnionActivities:
    """Published in 广州 (the client's org) and below, newest first; and others around."""

    titles: list[str]


@pytest.fixture
def union_activities(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> UnionActivities:
    from tests.activities.conftest import create_activity

    admin = make_staff(tree.province).headers
    create_activity(api, admin, tree.grassroots_a1x, title="天河抽奖")
    create_activity(api, admin, tree.city_a, title="广州答题", starts_in_hours=48)
    create_activity(api, admin, tree.city_a, title="广州投票")
    create_activity(api, admin, tree.city_a, title="草稿", publish=False)
    create_activity(api, admin, tree.city_b, title="深圳抽奖")
    return UnionActivities(["广州投票", "广州答题", "天河抽奖"])


@pytest.fixture
def member(tree: Tree, member_browser: BrowserFactory) -> Browser:  # noqa: F811
    """A verified member of 天河软件园工会 (in 广州) with 30 points and a voucher."""
    browser = member_browser(tree.grassroots_a1x)
    give_points_and_a_voucher(browser.user_id)
    return browser

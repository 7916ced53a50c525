"""The H5 activity page finds its activity directly, however far down the hub it is."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import create_activity, id_number, lottery_config
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, verify_membership


@pytest.mark.expected_console_errors("status of 404")
def test_member_opens_an_activity_past_the_first_hub_page(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    for n in range(55):
        create_activity(api, op.headers, tree.city_a, title=f"第{n}期活动", starts_in_hours=-60 + n)
    config = lottery_config(
        [{"name": "积分", "kind": "points", "weight": 1, "stock": 5, "value": 10}],
        free_draws_per_day=2,
    )
    # Live, but started after the 55 others: the 56th in the hub's order.
    last = create_activity(
        api, op.headers, tree.city_a, title="年终感恩抽奖", config=config, starts_in_hours=-1
    )
    far = create_activity(
        api, op.headers, tree.city_a, title="明年元旦抽奖", config=config, starts_in_hours=200
    )
    other = make_staff(tree.city_b, Role.OPERATOR)
    other_city = create_activity(api, other.headers, tree.city_b, title="深圳抽奖")
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="王芳", id_number=id_number(9)
        )
    sign_in_by_phone(phone, "13900009009")
    verify_membership(phone, "王芳", id_number(9))
    # The hub's first page stops before both.
    expect(phone.get_by_role("link", name="第0期活动")).to_have_count(1)
    expect(phone.get_by_role("link", name="年终感恩抽奖")).to_have_count(0)

    phone.goto(f"/h5/activities/{far['id']}")
    expect(phone.get_by_role("heading", level=1)).to_have_text("明年元旦抽奖")
    expect(phone.get_by_text("活动尚未开始")).to_be_visible()
    expect(phone.get_by_role("button", name="立即抽奖")).to_have_count(0)
    shot(phone, "h5-activity-direct")
    assert axe(phone) == []

    phone.goto(f"/h5/activities/{last['id']}")
    expect(phone.get_by_role("heading", level=1)).to_have_text("年终感恩抽奖")
    expect(phone.locator("#chances")).to_have_text("剩余抽奖次数：2")
    phone.get_by_role("button", name="立即抽奖").click()
    expect(phone.locator(".won")).to_contain_text("积分")
    phone.reload()
    expect(phone.locator("#chances")).to_have_text("剩余抽奖次数：1")

    response = phone.goto(f"/h5/activities/{other_city['id']}")
    assert response is not None
    assert response.status == 404
    expect(phone.get_by_role("heading", level=1)).to_have_text("活动不存在或已结束")

"""A member claims a consumer voucher on its H5 activity page, in a real browser, and
sees it arrive: after linking WeChat, as the page tells her to."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.accounts.models import Identity, Provider
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.members import service as members
from gonghui.members.models import Membership
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import create_activity, id_number
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone

GRAB = {
    "kind": "voucher_grab",
    "voucher_grab": {
        "stocks": [
            {
                "name": "十元消费券",
                "coupon_amount_cents": 1000,
                "threshold_cents": 5000,
                "max_coupons": 100,
                "max_per_member": 1,
            }
        ]
    },
}


def test_member_claims_a_voucher_and_sees_it_arrive(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    op = make_staff(tree.city_a, Role.OPERATOR)
    grab = create_activity(api, op.headers, tree.city_a, title="年终消费券", config=GRAB)
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="李娜", id_number=id_number(31)
        )
    sign_in_by_phone(phone, "13900009031")
    phone.get_by_label("姓名").fill("李娜")
    phone.get_by_label("身份证号").fill(id_number(31))
    phone.get_by_role("button", name="提交认证").click()
    expect(phone.get_by_role("status")).to_have_text("认证成功，欢迎加入！")

    phone.goto(f"/h5/activities/{grab['id']}")
    expect(phone.get_by_role("heading", level=2, name="消费券")).to_be_visible()
    expect(phone.get_by_text("¥10.00 · 满 ¥50.00 可用")).to_be_visible()
    # The worker opens the stock at WeChat Pay; then the button shows.
    claim = phone.get_by_role("button", name="立即领取")
    for _ in range(50):
        if claim.count():
            break
        phone.wait_for_timeout(200)
        phone.reload()
    expect(phone.get_by_text("剩余 100 张")).to_be_visible()
    claim.click()
    expect(phone.get_by_role("alert")).to_contain_text("请先通过工会微信小程序登录一次")

    with unit_of_work() as session:
        user_id = session.scalar(select(Membership.user_id).order_by(Membership.id.desc()))
        assert user_id is not None
        session.add(
            Identity(
                user_id=user_id,
                provider=Provider.WECHAT_MINI,
                app_id="wx_sim_mini",
                subject="o-sim-lina",
            )
        )
    claim.click()
    expect(phone.get_by_role("status")).to_have_text("领取成功，券正在发放到您的微信卡包")
    arrived = phone.get_by_text("十元消费券 · 已到账（微信卡包）")
    for _ in range(50):
        phone.reload()
        if arrived.count():
            break
        phone.wait_for_timeout(200)
    expect(arrived).to_be_visible()
    expect(phone.get_by_text("剩余 99 张")).to_be_visible()
    expect(phone.get_by_role("button", name="立即抽奖")).to_have_count(0)
    shot(phone, "h5-voucher-grab")
    assert axe(phone) == []

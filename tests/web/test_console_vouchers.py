"""An operator builds and publishes a consumer-voucher grab in the console."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from gonghui.activities.voucher_grab.stocks import list_stocks
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity, create_member
from tests.activities.voucher_grab.conftest import link_wechat
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.helpers import GRAB
from tests.web.pages import sign_in_to_console


def stock_id(activity_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity_id)
        return stock.id


def test_operator_creates_and_publishes_a_voucher_grab(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="活动管理").click()
    desktop.get_by_role("link", name="新建活动").click()
    desktop.get_by_label("活动类型").select_option(label="消费券")
    expect(desktop.get_by_label("奖品 1 名称")).to_be_hidden()
    expect(desktop.get_by_label("每次题目数")).to_be_hidden()
    desktop.get_by_label("活动名称").fill("岁末消费券")
    desktop.get_by_label("批次名称（20 字以内）").fill("二十元消费券")
    desktop.get_by_label("每张面额（元）").fill("20")
    desktop.get_by_label("使用门槛（满多少元可用）").fill("100")
    desktop.get_by_label("发放总张数").fill("0")
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.get_by_role("alert")).to_contain_text("max_coupons")
    desktop.get_by_label("发放总张数").fill("500")
    desktop.get_by_label("每个工会最多领取张数（留空不限）").fill("50")
    shot(desktop, "console-voucher-grab-wizard")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    desktop.get_by_role("button", name="发布活动").click()
    expect(desktop.locator("#kpi-status")).to_have_text("进行中")
    stock = desktop.get_by_role("row", name="二十元消费券")
    expect(stock).to_contain_text("0 / 500")
    for _ in range(50):  # the worker creates and starts the stock at WeChat Pay
        if "发放中" in stock.inner_text():
            break
        desktop.wait_for_timeout(200)
        desktop.reload()
    expect(stock).to_contain_text("发放中")
    shot(desktop, "console-voucher-grab")
    assert axe(desktop) == []

    activity_id = int(desktop.url.rsplit("/", 1)[-1])
    stored = api.get(f"/api/v1/activities/{activity_id}", headers=op.headers).json()
    assert stored["kind"] == "voucher_grab"
    assert stored["config"]["voucher_grab"] == {
        "stocks": [
            {
                "name": "二十元消费券",
                "coupon_amount_cents": 2000,
                "threshold_cents": 10000,
                "max_coupons": 500,
                "max_per_member": 1,
            }
        ],
        "appid": "",
        "max_per_org": 50,
    }


def test_operator_watches_the_opening_minute_and_pauses_a_stock(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    op = make_staff(tree.city_a, Role.OPERATOR)
    grab = create_activity(api, op.headers, tree.city_a, title="开抢消费券", config=GRAB)
    sign_in_to_console(desktop, op.username)
    desktop.goto(f"/console/activities/{grab['id']}")
    stock = desktop.get_by_role("row", name="十元消费券")
    expect(stock).to_contain_text("发放中", timeout=15_000)  # htmx refreshes the figures
    expect(desktop.locator("#kpi-vouchers-left")).to_have_text("100")

    members = [create_member(tree.grassroots_a1x) for _ in range(12)]
    for n, member in enumerate(members):
        link_wechat(member, f"o-dash-{n}")
        resp = api.post(
            f"/api/v1/activities/{grab['id']}/voucher-stocks/{stock_id(grab['id'])}/claims",
            headers=member.headers,
        )
        assert resp.status_code == 201, resp.text
    # No reload: the polled figures catch up as the worker sends the coupons.
    expect(desktop.locator("#kpi-vouchers-left")).to_have_text("88", timeout=15_000)
    expect(desktop.locator("#kpi-sent")).to_have_text("12", timeout=15_000)
    expect(desktop.locator("#kpi-sending")).to_have_text("0")
    expect(
        desktop.get_by_text("领取高峰时暂缓发券，先保会员领取；每张最多暂缓 30 秒")
    ).to_be_visible()
    expect(desktop.locator("#kpi-failures")).to_have_text("0 / 0")
    expect(stock).to_contain_text("12 / 100")
    # A grab's own figures, not a lottery's: claims and their face value.
    expect(desktop.locator("#kpi-claims")).to_have_text("12")
    expect(desktop.locator("#kpi-claimed-value")).to_have_text("¥120.00")  # 12 × ¥10
    expect(desktop.locator("#kpi-draws")).to_have_count(0)
    # Claims by union are counted when the page loads.
    desktop.reload()
    by_org = desktop.locator("#claims-by-org tbody tr")
    expect(by_org).to_have_count(1)
    expect(by_org.first.locator("td")).to_have_text(["天河软件园工会", "12", "12", "12"])
    shot(desktop, "console-voucher-opening-minute")
    assert axe(desktop) == []

    desktop.get_by_role("button", name="暂停发放 十元消费券").click()
    expect(stock).to_contain_text("已暂停")
    late = create_member(tree.grassroots_a1x)
    link_wechat(late, "o-dash-late")
    refused = api.post(
        f"/api/v1/activities/{grab['id']}/voucher-stocks/{stock_id(grab['id'])}/claims",
        headers=late.headers,
    )
    assert refused.json()["error"]["code"] == "vouchers.stock_paused"
    shot(desktop, "console-voucher-stock-paused")
    desktop.get_by_role("button", name="恢复发放 十元消费券").click()
    expect(stock).to_contain_text("发放中")

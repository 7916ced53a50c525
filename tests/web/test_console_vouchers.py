"""An operator builds and publishes a consumer-voucher grab in the console."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from gonghui.integrations import wechatpay_simulator as sim
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_operator_creates_and_publishes_a_voucher_grab(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="活动管理").click()
    desktop.get_by_role("link", name="新建活动").click()
    desktop.get_by_label("活动模板").select_option(label="消费券")
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

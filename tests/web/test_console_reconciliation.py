"""A platform admin reads the day's reconciliation in the console: a payment WeChat Pay has
and we do not is listed; a run again is queued; an operator of a union is refused."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from gonghui import clock
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.orgs.models import Role
from gonghui.reconciliation import service as reconciliation
from tests.fixtures import StaffFactory, Tree
from tests.reconciliation.helpers import planted_payment
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_a_platform_admin_reads_the_days_differences(
    desktop: Page, api: httpx.Client, make_staff: StaffFactory
) -> None:
    sim.reset()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    planted = planted_payment(api)
    reconciliation.run(clock.local_day())
    admin = make_staff(None, None, platform_admin=True)
    sign_in_to_console(desktop, admin.username)
    desktop.get_by_role("link", name="对账").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("微信支付对账")
    expect(desktop.get_by_text("核对 1 笔，差异 1 笔")).to_be_visible()
    row = desktop.get_by_role("row").filter(has_text=planted)
    expect(row).to_contain_text("微信支付有，本系统无")
    expect(row).to_contain_text("43.21")
    assert axe(desktop) == []
    shot(desktop, "console-reconciliation")
    desktop.get_by_role("button", name="开始对账").click()
    expect(desktop.get_by_role("status")).to_contain_text("已提交")
    sim.reset()


@pytest.mark.expected_console_errors("status of 403")
def test_a_union_operator_is_refused(desktop: Page, tree: Tree, make_staff: StaffFactory) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, operator.username)
    expect(desktop.get_by_role("link", name="对账")).to_have_count(0)
    desktop.goto("/console/reconciliation")
    expect(desktop.get_by_role("alert")).to_be_visible()

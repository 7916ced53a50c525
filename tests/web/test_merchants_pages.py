"""Merchant redemption in real browsers: the operator opens a merchant and its cashier in the
console; the member shows the voucher's code on her phone; the cashier redeems it on his;
the console shows the redemption and hands out the statement."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.members.models import Membership
from gonghui.merchants.models import Merchant
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import id_number
from tests.fixtures import PASSWORD, StaffFactory, Tree
from tests.merchants.conftest import issue, voucher_activity
from tests.web.conftest import _open, axe, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console, verify_membership


@pytest.fixture
def till_phone(browser: Browser, server: str) -> Iterator[Page]:
    """A second phone: the cashier's."""
    context, page, problems = _open(
        browser, server, (), viewport={"width": 375, "height": 667}, is_mobile=True
    )
    yield page
    context.close()
    assert problems.items == []


def test_a_cashier_redeems_the_code_a_member_shows(
    desktop: Page,
    phone: Page,
    till_phone: Page,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="合作商户").click()
    expect(desktop.get_by_text("还没有合作商户")).to_be_visible()
    desktop.get_by_label("所属工会").select_option(label="天河区总工会")
    desktop.get_by_label("商户名称").fill("天河助农超市")
    desktop.get_by_label("地址").fill("天河路 1 号")
    desktop.get_by_role("button", name="创建").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("天河助农超市")
    desktop.get_by_label("收银员", exact=True).fill("王师傅")
    desktop.get_by_label("用户名").fill("tianhe-till-1")
    desktop.get_by_label("初始密码（至少 10 位）").fill(PASSWORD)
    desktop.get_by_role("button", name="添加收银员").click()
    expect(desktop.get_by_role("status")).to_have_text("已添加收银员账号 tianhe-till-1")
    expect(desktop.get_by_role("cell", name="王师傅", exact=True)).to_be_visible()
    assert axe(desktop) == []

    # The member, verified, holds a voucher of the city union's lottery.
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="李娜", id_number=id_number(41)
        )
    sign_in_by_phone(phone, "13900009041")
    verify_membership(phone, "李娜", id_number(41))
    with unit_of_work() as session:
        membership_id = session.scalar(select(Membership.id).order_by(Membership.id.desc()))
        assert membership_id is not None
        merchant_id = session.scalar(select(Merchant.id).where(Merchant.name == "天河助农超市"))
        assert merchant_id is not None
    # A voucher for this supermarket only: the wallet and the code page say so.
    issue(voucher_activity(api, op.headers, tree.city_a), membership_id, merchant_ids=[merchant_id])
    phone.goto("/h5/wallet")
    where = phone.get_by_role("list", name="仅限以下商户使用：")
    expect(where.get_by_role("listitem")).to_have_text(["天河助农超市"])
    shot(phone, "h5-wallet-named-merchant")
    phone.get_by_role("link", name="出示核销码").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("出示核销码")
    expect(phone.get_by_role("list", name="仅限以下商户使用：")).to_have_text("天河助农超市")
    expect(phone.get_by_role("img", name="消费券核销二维码")).to_be_visible()
    code = phone.locator(".voucher-code code").inner_text()
    assert code.startswith("GHV1.")
    shot(phone, "h5-voucher-code")
    assert axe(phone) == []

    # The cashier signs in on his phone and lands on the till.
    till_phone.goto("/cashier")
    expect(till_phone).to_have_url("/console/login?next=%2Fcashier")
    till_phone.get_by_label("用户名").fill("tianhe-till-1")
    till_phone.get_by_label("密码").fill(PASSWORD)
    till_phone.get_by_role("button", name="登录").click()
    expect(till_phone.get_by_text("收银核销 · 天河助农超市")).to_be_visible()
    till_phone.get_by_label("会员核销码").fill(code)
    till_phone.get_by_label("订单金额（元）").fill("49.99")
    till_phone.get_by_role("button", name="核销", exact=True).click()
    expect(till_phone.get_by_role("alert")).to_have_text("订单金额未达到使用门槛")
    till_phone.get_by_label("订单金额（元）").fill("58.5")
    till_phone.get_by_role("button", name="核销", exact=True).click()
    expect(till_phone.get_by_role("status")).to_contain_text("核销成功")
    expect(till_phone.get_by_role("status")).to_contain_text("满50减10 · ¥10.00")
    expect(till_phone.get_by_text("共 1 张，券面额合计 ¥10.00")).to_be_visible()
    # The form is clear for the next member.
    expect(till_phone.get_by_label("会员核销码")).to_have_value("")
    shot(till_phone, "cashier-till")
    assert axe(till_phone) == []
    # The same code again is refused.
    till_phone.get_by_label("会员核销码").fill(code)
    till_phone.get_by_label("订单金额（元）").fill("60")
    till_phone.get_by_role("button", name="核销", exact=True).click()
    expect(till_phone.get_by_role("alert")).to_have_text("这张消费券已使用、过期或作废")

    # The member's page has no code to show any more; the wallet says it was used.
    phone.reload()
    expect(phone.get_by_role("status")).to_have_text("这张消费券已使用、过期或作废")
    phone.goto("/h5/wallet")
    expect(phone.get_by_role("link", name="出示核销码")).to_have_count(0)

    # The console lists it, and the statement settles it.
    desktop.reload()
    expect(desktop.get_by_text("共 1 张，应结算 ¥10.00")).to_be_visible()
    expect(desktop.get_by_role("cell", name="58.50")).to_be_visible()
    shot(desktop, "console-merchant")
    with desktop.expect_download() as download:
        desktop.get_by_role("link", name="下载结算单（XLSX）").click()
    path = download.value.path()
    rows = list(load_workbook(io.BytesIO(path.read_bytes())).active.iter_rows(values_only=True))
    assert rows[-1][:5] == ("合计", 1, None, 10, 58.5)

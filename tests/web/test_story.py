"""The whole story in a real browser: an operator imports a roster and publishes a lottery;
a member on a phone signs in, verifies, draws, wins and finds the voucher and its till code;
the operator watches the draw arrive on the dashboard and exports the winners."""

from __future__ import annotations

import io
import json

from openpyxl import load_workbook  # type: ignore[import-untyped]
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.activities.conftest import id_number
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console, verify_membership


def _roster_csv() -> bytes:
    lines = [
        "姓名,身份证号,手机号",
        f"王芳,{id_number(11)},13800000011",
        f"赵强,{id_number(12)},13800000012",
        "钱多多,12345,13800000013",  # not an ID number: reported, not imported
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_operator_and_member_story(
    desktop: Page, phone: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)

    # Roster import, with live progress and an error report.
    desktop.get_by_role("link", name="会员名册").click()
    shot(desktop, "console-roster")
    assert axe(desktop) == []
    desktop.get_by_label("导入到组织").select_option(label="广州市总工会")
    desktop.get_by_label("名册文件（CSV 或 XLSX）").set_input_files(
        {"name": "roster.csv", "mimeType": "text/csv", "buffer": _roster_csv()}
    )
    desktop.get_by_role("button", name="开始导入").click()
    # Polled every second; generous limits for a busy CI machine.
    expect(desktop.get_by_role("heading", name="导入完成")).to_be_visible(timeout=20_000)
    expect(desktop.get_by_role("status")).to_have_text("成功导入 2 行，1 行有误")
    shot(desktop, "console-import")
    assert axe(desktop) == []
    with desktop.expect_download() as report:
        desktop.get_by_role("link", name="下载错误报告").click()
    report_path = report.value.path()
    report_text = report_path.read_text(encoding="utf-8-sig")
    assert "id_number" in report_text
    assert "12345" not in report_text  # the report never repeats the values

    # The lottery wizard: one voucher prize that always wins.
    desktop.get_by_role("link", name="活动管理").click()
    desktop.get_by_role("link", name="新建活动").click()
    desktop.get_by_label("活动类型").select_option(label="抽奖")
    desktop.get_by_label("活动名称").fill("迎新春幸运抽奖")
    desktop.get_by_label("主办组织").select_option(label="广州市总工会")
    desktop.get_by_label("奖品 1 名称").fill("五十元购物券")
    desktop.get_by_label("奖品 1 类型").select_option(label="优惠券")
    desktop.get_by_label("奖品 1 库存").fill("1")
    desktop.get_by_label("奖品 1 权重").fill("1")
    desktop.get_by_label("奖品 1 面值").fill("50")
    shot(desktop, "console-wizard")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.get_by_role("status")).to_have_text("活动已保存为草稿，确认无误后请发布")
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    desktop.get_by_role("button", name="发布活动").click()
    expect(desktop.locator("#kpi-status")).to_have_text("进行中")
    expect(desktop.locator("#kpi-draws")).to_have_text("0")
    expect(desktop.locator("#kpi-left")).to_have_text("1")
    dashboard_url = desktop.url

    # The member, on a phone.
    sign_in_by_phone(phone, "13800000011")
    expect(phone).to_have_url("/h5/verify")
    verify_membership(phone, "王芳", id_number(11))
    expect(phone.locator(".activity-card")).to_have_count(1)
    shot(phone, "h5-hub")
    assert axe(phone) == []
    phone.get_by_role("link", name="迎新春幸运抽奖").click()
    expect(phone.locator("#chances")).to_have_text("剩余抽奖次数：1")
    shot(phone, "h5-lottery")
    assert axe(phone) == []
    phone.get_by_role("button", name="立即抽奖").click()
    expect(phone.locator(".won")).to_have_text("恭喜您抽中：五十元购物券")
    expect(phone.locator(".reveal")).to_have_css("opacity", "1")
    shot(phone, "h5-lottery-won")
    assert axe(phone) == []
    phone.get_by_role("link", name="查看我的卡券").click()
    voucher = phone.locator(".voucher")
    expect(voucher).to_have_count(1)
    expect(voucher.locator("h3")).to_have_text("五十元购物券")
    expect(voucher.locator(".voucher-value")).to_have_text("¥50.00")
    code = voucher.locator(".code code").inner_text()
    assert len(code) >= 6
    shot(phone, "h5-wallet")
    assert axe(phone) == []
    # The code to show at a merchant's till: a QR code of a signed, one-minute code.
    voucher.get_by_role("link", name="出示核销码").click()
    expect(phone.get_by_role("img", name="消费券核销二维码")).to_be_visible()
    expect(phone.locator(".voucher-code svg path")).to_have_count(1)
    assert phone.locator(".voucher-code code").inner_text().startswith("GHV1.")

    # Back on the dashboard the polling shows the draw and the winner.
    assert desktop.url == dashboard_url
    expect(desktop.locator("#kpi-draws")).to_have_text("1", timeout=20_000)
    expect(desktop.locator("#kpi-participants")).to_have_text("1")
    expect(desktop.locator("#kpi-left")).to_have_text("0")
    expect(desktop.locator("table.winners tbody tr")).to_have_count(1)
    expect(desktop.locator("table.winners tbody tr")).to_contain_text("五十元购物券")
    by_org = desktop.locator("#by-org tbody tr")
    expect(by_org).to_have_count(1)
    expect(by_org).to_have_text("广州市总工会111")
    chart = json.loads(desktop.locator("#chart-data").text_content() or "{}")
    assert (chart["won"], chart["left"], chart["draws"]) == ([1], [0], [1])
    assert len(chart["hours"]) == 1
    shot(desktop, "console-dashboard")
    assert axe(desktop) == []
    with desktop.expect_download() as winners:
        desktop.get_by_role("link", name="导出中奖名单（XLSX）").click()
    sheet = load_workbook(io.BytesIO(winners.value.path().read_bytes())).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("中奖人", "奖品", "中奖时间")
    assert [(r[0], r[1]) for r in rows[1:]] == [("王*", "五十元购物券")]

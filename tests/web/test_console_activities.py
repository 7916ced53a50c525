"""An operator fills the question bank and builds a quiz + draw in the console."""

from __future__ import annotations

import io

import httpx
from openpyxl import Workbook  # type: ignore[import-untyped]
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.merchants.conftest import open_merchant
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def _questions_xlsx(rows: list[tuple[str, str, str, str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["题型", "题目", "选项", "答案"])
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _upload(page: Page, content: bytes) -> None:
    page.get_by_label("题目文件（XLSX）").set_input_files(
        {
            "name": "questions.xlsx",
            "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "buffer": content,
        }
    )
    page.get_by_role("button", name="导入", exact=True).click()


def test_operator_imports_questions_and_publishes_a_quiz_lottery(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="题库").click()
    expect(desktop.get_by_role("heading", name="共 0 道题")).to_be_visible()
    _upload(desktop, _questions_xlsx([("单选", "工会法哪年颁布？", "1950|1992|2001", "Z")]))
    expect(desktop.get_by_role("alert")).to_contain_text("题目文件有误，未导入任何题目")
    expect(desktop.get_by_role("alert")).to_contain_text("第 2 行")
    expect(desktop.get_by_role("heading", name="共 0 道题")).to_be_visible()
    good = [
        ("单选", "工会法哪年颁布？", "1950|1992|2001", "A"),
        ("判断", "会员有权参加工会活动", "", "对"),
        ("多选", "工会的基本职责包括", "维护权益|参与管理|经营企业", "AB"),
    ]
    _upload(desktop, _questions_xlsx(good))
    expect(desktop.get_by_role("status")).to_have_text("已导入 3 道题")
    expect(desktop.locator("tbody tr")).to_have_count(3)
    shot(desktop, "console-questions")
    assert axe(desktop) == []

    # The prize voucher is for the union's partner supermarket only.
    partner = open_merchant(api, op.headers, tree.district_a1, "工会合作超市")
    desktop.get_by_role("link", name="活动管理").click()
    desktop.get_by_role("link", name="新建活动").click()
    desktop.get_by_label("活动类型").select_option(label="答题")
    expect(desktop.get_by_label("奖品 1 名称")).to_be_hidden()
    expect(desktop.get_by_label("每次题目数")).to_be_visible()
    desktop.get_by_label("活动类型").select_option(label="抽奖")
    expect(desktop.get_by_label("每次题目数")).to_be_hidden()
    desktop.get_by_label("活动类型").select_option(label="答题抽奖")
    desktop.get_by_label("活动名称").fill("学法答题抽好礼")
    desktop.get_by_label("每次题目数").fill("3")
    desktop.get_by_label("入会满多少天可参与").fill("30")
    desktop.get_by_label("会员标签（逗号分隔，留空为全部会员）").fill("一线职工，劳模")
    desktop.get_by_label("及格分（百分制）").fill("100")
    desktop.get_by_label("奖品 1 名称").fill("十元券")
    desktop.get_by_label("奖品 1 类型").select_option(label="优惠券")
    desktop.get_by_label("奖品 1 库存").fill("10")
    desktop.get_by_label("奖品 1 权重").fill("1")
    desktop.get_by_label("奖品 1 面值").fill("10")
    desktop.get_by_label("奖品 1 限用商户").select_option(str(partner))
    desktop.get_by_label("结束时间").fill("2020-01-01T00:00")
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.get_by_role("alert")).to_contain_text("结束时间必须晚于开始时间")
    assert axe(desktop) == []
    # The form keeps what was typed.
    expect(desktop.get_by_label("活动名称")).to_have_value("学法答题抽好礼")
    expect(desktop.get_by_label("奖品 1 名称")).to_have_value("十元券")
    expect(desktop.get_by_label("奖品 1 限用商户")).to_have_values([str(partner)])
    desktop.get_by_label("结束时间").fill("2099-01-01T00:00")
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    desktop.get_by_role("button", name="发布活动").click()
    expect(desktop.locator("#kpi-status")).to_have_text("进行中")
    desktop.get_by_role("button", name="暂停活动").click()
    expect(desktop.locator("#kpi-status")).to_have_text("已暂停")
    desktop.get_by_role("button", name="恢复活动").click()
    expect(desktop.locator("#kpi-status")).to_have_text("进行中")
    preview = desktop.locator(".preview .activity-card")
    expect(preview).to_contain_text("学法答题抽好礼")
    expect(preview).to_contain_text("答题抽奖")
    expect(desktop.locator("#prize-config tbody tr")).to_have_text(["十元券优惠券工会合作超市"])
    shot(desktop, "console-activity-quiz-lottery")
    assert axe(desktop) == []

    activity_id = int(desktop.url.rsplit("/", 1)[-1])
    stored = api.get(f"/api/v1/activities/{activity_id}", headers=op.headers).json()
    assert stored["kind"] == "quiz_lottery"
    assert stored["config"]["quiz"]["question_count"] == 3
    assert stored["config"]["quiz"]["reward"] == {
        "type": "chances",
        "chances": 1,
        "lottery_activity_id": None,
    }
    assert stored["config"]["lottery"]["prizes"][0]["value"] == 1000
    assert stored["config"]["lottery"]["prizes"][0]["merchant_ids"] == [partner]
    assert stored["eligibility"] == {"min_membership_days": 30, "tags_any": ["一线职工", "劳模"]}
    desktop.get_by_role("link", name="活动管理").click()
    expect(desktop.locator("tbody tr")).to_have_count(1)
    expect(desktop.locator("tbody tr")).to_contain_text("进行中")

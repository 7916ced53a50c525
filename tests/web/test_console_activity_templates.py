"""An operator keeps a monthly lottery as a template, repeats it next month with one click,
and starts a district's activity from the template."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest
from playwright.sync_api import Page, expect

from gonghui.activities.design import one_month_later
from gonghui.orgs.models import Role
from tests.activities.competition.conftest import competition_config, make_form_app
from tests.activities.conftest import create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_operator_saves_a_template_repeats_next_month_and_starts_from_the_template(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    source = create_activity(
        api,
        op.headers,
        tree.city_a,
        title="十二月抽奖",
        config=lottery_config(free_draws_per_day=2),
    )
    sign_in_to_console(desktop, op.username)
    desktop.goto(f"/console/activities/{source['id']}")
    desktop.get_by_label("模板名称").fill("每月抽奖")
    desktop.get_by_role("button", name="保存为模板").click()
    expect(desktop.get_by_role("status")).to_contain_text("已保存为模板")
    assert axe(desktop) == []

    desktop.get_by_role("button", name="复制到下月").click()
    expect(desktop.get_by_role("status")).to_have_text("已创建下月的草稿，确认时间和设置后请发布")
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    copy_id = int(desktop.url.split("?")[0].rsplit("/", 1)[-1])
    assert copy_id != source["id"]
    shot(desktop, "console-activity-repeated")
    assert axe(desktop) == []
    copy = api.get(f"/api/v1/activities/{copy_id}", headers=op.headers).json()
    assert copy["cloned_from_id"] == source["id"]
    assert copy["config"] == source["config"]
    starts = datetime.fromisoformat(source["starts_at"])
    assert datetime.fromisoformat(copy["starts_at"]) == one_month_later(starts)

    desktop.get_by_role("link", name="活动管理").click()
    desktop.get_by_role("link", name="活动模板").click()
    expect(desktop.locator("#templates tbody tr")).to_have_count(1)
    desktop.get_by_label("模板「每月抽奖」的新名称").fill("月度抽奖")
    desktop.get_by_role("button", name="改名 每月抽奖").click()
    expect(desktop.get_by_role("status")).to_have_text("模板已改名")
    expect(desktop.locator("#templates")).to_contain_text("广州市总工会")
    shot(desktop, "console-activity-templates")
    assert axe(desktop) == []

    desktop.get_by_role("link", name="新建活动").click()
    templates = desktop.locator("#saved-templates")
    expect(templates).to_contain_text("抽奖 · 广州市总工会")
    shot(desktop, "console-wizard-from-template", full_page=False)
    assert axe(desktop) == []
    templates.get_by_role("link", name="月度抽奖").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("用模板「月度抽奖」新建活动")
    desktop.get_by_label("主办组织").select_option(label="天河区总工会")
    desktop.get_by_label("活动名称（留空则沿用模板中的名称）").fill("天河区一月抽奖")
    shot(desktop, "console-activity-template-use")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("天河区一月抽奖")
    expect(desktop.get_by_role("status")).to_have_text("活动已保存为草稿，确认无误后请发布")
    made_id = int(desktop.url.split("?")[0].rsplit("/", 1)[-1])
    made = api.get(f"/api/v1/activities/{made_id}", headers=op.headers).json()
    assert (made["org_id"], made["status"]) == (tree.district_a1, "draft")
    assert made["config"] == source["config"]


@pytest.mark.expected_console_errors("status of 422")  # the refused form comes back
def test_a_district_s_competition_from_the_city_s_template_takes_its_own_form(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = competition_config(make_form_app(api, tree.city_a).id)
    source = create_activity(
        api, op.headers, tree.city_a, publish=False, title="职工技能大赛", config=config
    )
    resp = api.post(
        "/api/v1/activity-templates",
        json={"activity_id": source["id"], "name": "技能大赛"},
        headers=op.headers,
    )
    assert resp.status_code == 201, resp.text
    district_app = make_form_app(api, tree.district_a1)

    sign_in_to_console(desktop, op.username)
    desktop.goto(f"/console/activity-templates/{resp.json()['id']}/use")
    desktop.get_by_label("主办组织").select_option(label="天河区总工会")
    desktop.get_by_label("活动名称（留空则沿用模板中的名称）").fill("天河区技能大赛")
    desktop.get_by_role("button", name="保存为草稿").click()
    # The city's form is not the district's: told so, with what was typed kept.
    expect(desktop.get_by_role("alert")).to_contain_text("报名表须是本会")
    expect(desktop.get_by_label("活动名称（留空则沿用模板中的名称）")).to_have_value(
        "天河区技能大赛"
    )
    desktop.get_by_label("报名表所在应用编号").fill(str(district_app.id))
    desktop.get_by_label("报名表（数据表名）").fill("signup")
    shot(desktop, "console-activity-template-use-competition")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("天河区技能大赛")
    made_id = int(desktop.url.split("?")[0].rsplit("/", 1)[-1])
    made = api.get(f"/api/v1/activities/{made_id}", headers=op.headers).json()
    assert made["org_id"] == tree.district_a1
    assert made["config"]["competition"]["form"]["app_id"] == district_app.id

"""The activity wizard builds a praise vote and a competition: each kind's own step, saved
as a draft the organiser then runs from the activity's page."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.activities.competition.conftest import make_form_app
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def _new(desktop: Page, kind: str, title: str) -> None:
    desktop.goto("/console/activities/new")
    desktop.get_by_label("活动类型").select_option(label=kind)
    desktop.get_by_label("活动名称").fill(title)
    desktop.get_by_label("开始时间").fill("2026-12-10T09:00")
    desktop.get_by_label("结束时间").fill("2027-01-10T18:00")


def test_operator_builds_a_vote_and_a_competition_in_the_wizard(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    app = make_form_app(api, tree.city_a)
    sign_in_to_console(desktop, op.username)

    _new(desktop, "评选投票", "2026年度劳模评选")
    expect(desktop.get_by_label("每人每天票数")).to_be_visible()
    expect(desktop.get_by_label("报名表（数据表名）")).to_be_hidden()
    expect(desktop.get_by_label("奖品 1 名称")).to_be_hidden()
    expect(desktop.get_by_label("每人每天免费抽奖次数")).to_be_hidden()
    desktop.get_by_label("每人每天票数").fill("3")
    desktop.get_by_label("每天对同一候选人票数").fill("1")
    desktop.get_by_label("候选人类别（逗号分隔，可不填）").fill("劳动模范，大国工匠")
    desktop.get_by_label("投票结束前不公开票数").check()
    shot(desktop, "console-wizard-vote")
    assert axe(desktop) == []
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    expect(desktop.get_by_role("link", name="候选人与排名")).to_be_visible()
    vote_id = int(desktop.url.split("?")[0].rsplit("/", 1)[-1])
    stored = api.get(f"/api/v1/activities/{vote_id}", headers=op.headers).json()
    assert stored["config"]["vote"] == {
        "votes_per_day": 3,
        "votes_per_candidate_per_day": 1,
        "votes_total": None,
        "hide_counts_until_end": True,
        "categories": ["劳动模范", "大国工匠"],
    }

    _new(desktop, "竞赛", "职工技能大赛")
    desktop.get_by_label("报名表所在应用编号").fill(str(app.id))
    desktop.get_by_label("报名表（数据表名）").fill("signup")
    desktop.get_by_label("报名开始").fill("2026-12-10T09:00")
    desktop.get_by_label("报名截止").fill("2026-12-20T18:00")
    desktop.get_by_label("作品提交截止").fill("2026-12-31T18:00")
    desktop.get_by_label("评分项 1 名称").fill("工艺")
    desktop.get_by_label("评分项 1 权重").fill("3")
    desktop.get_by_label("评分项 1 满分").fill("10")
    desktop.get_by_label("评分项 2 名称").fill("创新")
    desktop.get_by_label("评分项 2 权重").fill("1")
    desktop.get_by_label("评分项 2 满分").fill("10")
    # A table the union does not have is refused, and the form keeps what was typed.
    desktop.get_by_label("报名表（数据表名）").fill("nosuch")
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.get_by_role("alert")).to_be_visible()
    expect(desktop.get_by_label("评分项 2 名称")).to_have_value("创新")
    desktop.get_by_label("报名表（数据表名）").fill("signup")
    desktop.get_by_role("button", name="保存为草稿").click()
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    contest_id = int(desktop.url.split("?")[0].rsplit("/", 1)[-1])
    rules = api.get(f"/api/v1/activities/{contest_id}", headers=op.headers).json()["config"][
        "competition"
    ]
    assert rules["form"]["app_id"] == app.id
    assert rules["form"]["table"] == "signup"
    assert [(c["key"], c["name"], c["weight"], c["max_score"]) for c in rules["rubric"]] == [
        ("c1", "工艺", 3, 10),
        ("c2", "创新", 1, 10),
    ]
    assert rules["teams"] is False
    assert rules["registration_closes_at"] == "2026-12-20T18:00:00+08:00"

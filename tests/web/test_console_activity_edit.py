"""An operator edits activities in the console: everything while a draft, only the safe
fields once live, with the service's field errors shown on the form."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from playwright.sync_api import Page, expect

from gonghui import clock
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console

LOCAL = "%Y-%m-%dT%H:%M"


def _local(instant: datetime) -> str:
    return instant.astimezone(clock.display_zone()).strftime(LOCAL)


def test_operator_edits_a_draft_and_sees_field_errors(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    draft = create_activity(
        api, op.headers, tree.city_a, title="十二月抽奖", publish=False, starts_in_hours=48
    )
    sign_in_to_console(desktop, op.username)
    desktop.goto(f"/console/activities/{draft['id']}")
    desktop.get_by_role("link", name="编辑").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("编辑活动")
    expect(desktop.get_by_label("开始时间")).to_be_enabled()

    starts = datetime.fromisoformat(draft["starts_at"])
    desktop.get_by_label("结束时间").fill(_local(starts - timedelta(hours=1)))
    desktop.get_by_role("button", name="保存修改").click()
    error = desktop.locator("#edit-ends_at-error")
    expect(error).to_have_text("结束时间必须晚于开始时间")
    expect(desktop.get_by_label("结束时间")).to_have_attribute("aria-invalid", "true")
    shot(desktop, "console-activity-edit-error")
    assert axe(desktop) == []
    unchanged = api.get(f"/api/v1/activities/{draft['id']}", headers=op.headers).json()
    assert unchanged["ends_at"] == draft["ends_at"]

    new_end = starts + timedelta(days=10)
    desktop.get_by_label("结束时间").fill(_local(new_end))
    desktop.get_by_label("活动名称").fill("十二月暖冬抽奖")
    desktop.get_by_label("入会满多少天可参与").fill("30")
    desktop.get_by_label("预算（元，可不填）").fill("500")
    desktop.get_by_role("button", name="保存修改").click()
    expect(desktop.get_by_role("status")).to_have_text("修改已保存")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("十二月暖冬抽奖")
    saved = api.get(f"/api/v1/activities/{draft['id']}", headers=op.headers).json()
    assert saved["title"] == "十二月暖冬抽奖"
    assert saved["budget_cents"] == 50_000
    assert saved["eligibility"] == {"min_membership_days": 30, "tags_any": []}
    assert datetime.fromisoformat(saved["ends_at"]) == new_end.replace(second=0, microsecond=0)
    assert saved["starts_at"] == draft["starts_at"]


def test_a_live_activity_only_takes_safe_changes(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    live = create_activity(api, op.headers, tree.city_a, title="双十一抽奖")
    sign_in_to_console(desktop, op.username)
    desktop.goto(f"/console/activities/{live['id']}/edit")
    expect(desktop.get_by_label("开始时间")).to_be_disabled()
    expect(desktop.get_by_label("预算（元，可不填）")).to_be_disabled()
    expect(desktop.get_by_label("结束时间")).to_be_enabled()
    shot(desktop, "console-activity-edit-live")
    assert axe(desktop) == []

    desktop.get_by_label("结束时间").fill(_local(clock.now() - timedelta(hours=2)))
    desktop.get_by_role("button", name="保存修改").click()
    expect(desktop.locator("#edit-ends_at-error")).to_have_text(
        "已发布的活动，结束时间只能改到将来的时间"
    )
    assert (
        api.get(f"/api/v1/activities/{live['id']}", headers=op.headers).json()["ends_at"]
        == (live["ends_at"])
    )

    later = clock.now() + timedelta(days=14)
    desktop.get_by_label("结束时间").fill(_local(later))
    desktop.get_by_label("活动说明").fill("延长一周，欢迎参加")
    desktop.get_by_role("button", name="保存修改").click()
    expect(desktop.get_by_role("status")).to_have_text("修改已保存")
    saved = api.get(f"/api/v1/activities/{live['id']}", headers=op.headers).json()
    assert saved["description"] == "延长一周，欢迎参加"
    assert datetime.fromisoformat(saved["ends_at"]) == later.replace(second=0, microsecond=0)
    assert (saved["status"], saved["starts_at"]) == ("live", live["starts_at"])

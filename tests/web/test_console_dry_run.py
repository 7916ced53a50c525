"""An operator dry-runs a draft lottery from its page: how the prizes fall, the budget used
and the day the stock runs out, before publishing."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_operator_dry_runs_a_draft_lottery(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    prizes = [
        {"name": "十元券", "kind": "voucher", "weight": 1, "stock": 50, "value": 1000},
        {"name": "谢谢参与", "kind": "none", "weight": 4},
    ]
    draft = create_activity(
        api,
        op.headers,
        tree.city_a,
        publish=False,
        title="元旦抽奖",
        budget_cents=100_000,
        config=lottery_config(prizes, max_wins_per_member=None),
    )
    sign_in_to_console(desktop, op.username)
    desktop.goto(f"/console/activities/{draft['id']}")
    desktop.get_by_role("link", name="试运行").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("试运行 · 元旦抽奖")
    desktop.get_by_label("预计参与会员数").fill("500")
    desktop.get_by_label("每天参与比例（%）").fill("20")
    desktop.get_by_role("button", name="开始试运行").click()

    summary = desktop.locator("#dry-run-summary")
    expect(summary).to_contain_text("抽奖次数")
    rows = desktop.locator("#dry-run-prizes tbody tr")
    expect(rows).to_have_count(2)
    voucher = rows.nth(0).locator("td")
    expect(voucher.nth(0)).to_have_text("十元券")
    expect(voucher.nth(4)).to_have_text("50")  # all 50 given within the week
    expect(summary).to_contain_text("¥500.00 / ¥1000.00")
    days = desktop.locator("#dry-run-days tbody tr")
    assert days.count() in (7, 8)
    shot(desktop, "console-activity-dry-run")
    assert axe(desktop) == []
    # Nothing was written: the draft is still a draft.
    resp = api.get(f"/api/v1/activities/{draft['id']}", headers=op.headers)
    assert resp.json()["status"] == "draft"

    desktop.get_by_label("预计参与会员数").fill("10000000")
    desktop.get_by_label("每天参与比例（%）").fill("100")
    desktop.get_by_role("button", name="开始试运行").click()
    expect(desktop.get_by_role("alert")).to_contain_text("模拟规模过大")

"""Staff open the analytics page: the figures it shows are the ones the ledger and the
participation tables give, counted directly; "refresh now" queues the job, which picks up
a new draw; each figure set downloads as XLSX."""

from __future__ import annotations

import io
import time
from datetime import datetime

import httpx
import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.analytics import aggregate
from gonghui.analytics.models import AggregateRun
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity, create_member, draw, lottery_config
from tests.analytics.conftest import PRIZES, add_unverified, count_directly
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def _computed_at() -> datetime | None:
    with unit_of_work(read_only=True) as session:
        return session.scalar(select(AggregateRun.computed_at))


def _wait_for_a_run_after(at: datetime | None) -> None:
    deadline = time.monotonic() + 30
    while (_computed_at() or at) == at:
        assert time.monotonic() < deadline, "the refresh did not run"
        time.sleep(0.1)


def _row(page: Page, table: str, header: str) -> list[str]:
    row = page.locator(f"#{table} tbody tr").filter(
        has=page.get_by_role("rowheader", name=header, exact=True)
    )
    return [c.strip() for c in row.locator("th, td").all_inner_texts()]


@pytest.mark.expected_console_errors("status of 404")
def test_staff_see_figures_that_match_the_ledger(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.province, Role.OPERATOR)
    activity = create_activity(
        api,
        staff.headers,
        tree.province,
        title="十二月抽奖",
        config=lottery_config(PRIZES, free_draws_per_day=3),
        budget_cents=10_000,
    )
    a = [create_member(tree.district_a1), create_member(tree.grassroots_a1x)]
    b = [create_member(tree.grassroots_b1), create_member(tree.grassroots_b1)]
    add_unverified(tree.grassroots_b1)
    for member in (a[0], a[1], a[0], b[0]):
        assert draw(api, activity["id"], member.headers).status_code == 200
    aggregate.recompute()  # the scheduled job's run
    first_run = _computed_at()

    sign_in_to_console(desktop, staff.username)
    desktop.get_by_role("link", name="数据分析").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("数据分析")
    expect(desktop.locator("#computed-at")).to_contain_text("数据计算于")

    province = count_directly(tree.province)
    assert (province.roster, province.verified, province.active) == (5, 4, 3)
    expect(desktop.locator("#kpi-roster")).to_have_text(str(province.roster))
    expect(desktop.locator("#kpi-verified")).to_have_text(str(province.verified))
    expect(desktop.locator("#kpi-active")).to_have_text(str(province.active))
    expect(desktop.locator("#kpi-coverage")).to_have_text("75.0%")
    spent = province.issued_amount  # every voucher won came out of the budget
    expect(desktop.locator("#kpi-budget")).to_have_text(
        f"¥{spent // 100}.{spent % 100:02d} / ¥100.00"
    )

    month = aggregate.month_of(aggregate.now())
    assert _row(desktop, "monthly-table", month) == [
        month,
        str(province.roster),
        str(province.verified),
        str(province.active),
        str(province.draws),
        "75.0%",
    ]
    for name, org_id in (("广州市总工会", tree.city_a), ("深圳市总工会", tree.city_b)):
        city = count_directly(org_id)
        coverage = f"{100 * city.active / city.verified:.1f}%"
        assert _row(desktop, "orgs-table", name) == [
            name,
            str(city.roster),
            str(city.verified),
            str(city.active),
            coverage,
            str(city.issued),
            "0",
        ]
    activity_row = desktop.locator(f'#activities-table tr[data-activity-id="{activity["id"]}"]')
    cells = [c.strip() for c in activity_row.locator("td").all_inner_texts()]
    assert cells == [
        "广东省总工会",
        month,
        "3",
        "4",
        "75.0%",
        "4",
        "¥100.00",
        f"¥{spent // 100}.{spent % 100:02d}",
    ]
    if province.issued:
        issued = desktop.locator("#benefits-table tbody tr").filter(has_text="消费券")
        expect(issued.locator("td").nth(1)).to_have_text(str(province.issued))
    expect(desktop.locator("#coverage-chart")).to_be_visible()
    shot(desktop, "console-analytics")
    assert axe(desktop) == []

    with desktop.expect_download() as download:
        desktop.locator("#monthly-h").locator("..").get_by_role("link", name="导出 XLSX").click()
    rows = list(
        load_workbook(io.BytesIO(download.value.path().read_bytes())).active.iter_rows(
            values_only=True
        )
    )
    assert rows[-1][:4] == (month, province.roster, province.verified, province.active)

    # A new member draws; "refresh now" queues the job, whose run the page then shows.
    late = create_member(tree.grassroots_b1)
    assert draw(api, activity["id"], late.headers).status_code == 200
    desktop.get_by_role("button", name="立即刷新").click()
    expect(desktop.get_by_role("status")).to_have_text(
        "已加入刷新队列，稍后刷新本页即可看到最新数据"
    )
    _wait_for_a_run_after(first_run)
    desktop.reload()
    expect(desktop.locator("#kpi-active")).to_have_text("4")
    expect(desktop.locator("#kpi-verified")).to_have_text(
        str(count_directly(tree.province).verified)
    )
    desktop.get_by_role("button", name="立即刷新").click()
    expect(desktop.get_by_role("alert")).to_have_text("刚刚已刷新过，请稍后再试")

    # City B's operator sees only city B, and the province is not theirs to ask for.
    other = make_staff(tree.city_b, Role.OPERATOR)
    desktop.get_by_role("button", name="退出登录").click()
    sign_in_to_console(desktop, other.username)
    desktop.goto("/console/analytics")
    expect(desktop.get_by_label("组织").locator("option")).to_have_text(
        ["深圳市总工会", "　南山科技园工会"]
    )
    expect(desktop.locator("#kpi-verified")).to_have_text(str(count_directly(tree.city_b).verified))
    desktop.goto(f"/console/analytics?org_id={tree.province}")
    expect(desktop.get_by_role("alert")).to_be_visible()
    expect(desktop.locator("#kpi-verified")).to_have_count(0)

    desktop.goto("/console/analytics?lang=en")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Analytics")
    shot(desktop, "console-analytics-en")

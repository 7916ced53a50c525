"""Staff consent in the console: an operator approves, on the open-platform page, an app's
request to read the roster, and withdraws it; both audited."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_an_operator_approves_and_withdraws_an_apps_access_to_the_roster(
    desktop: Page, server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    registered = api.post(
        "/api/v1/oauth-clients",
        json={
            "org_id": tree.city_a,
            "name": "职工档案同步",
            "kind": "confidential",
            "redirect_uris": ["https://hr.example.com/callback"],
            "scope": "openid org:members:read",
        },
        headers=developer.headers,
    )
    assert registered.status_code == 201, registered.text
    operator = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, operator.username)
    desktop.get_by_role("link", name="开放平台").click()

    consent = desktop.get_by_role("region", name="工作人员授权")
    row = consent.get_by_role("row").filter(has_text="职工档案同步")
    expect(row).to_contain_text("org:members:read")
    expect(row).to_contain_text("待批准")
    assert axe(desktop) == []
    row.get_by_role("button", name="批准").click()
    expect(desktop.get_by_role("status")).to_contain_text("已批准")
    expect(row).to_contain_text("已批准")
    shot(desktop, "console-staff-consent")

    row.get_by_role("button", name="撤回").click()
    expect(desktop.get_by_role("status")).to_contain_text("已撤回")
    expect(row).to_contain_text("待批准")
    with unit_of_work(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.startswith("openplatform.approval."))
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["openplatform.approval.grant", "openplatform.approval.withdraw"]

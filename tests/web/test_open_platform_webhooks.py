"""A union's developer adds a webhook endpoint to an app in the console, sees the secret
once, reads the delivery log (status, attempts, response code) and redelivers an event."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.activities.conftest import create_member
from tests.fixtures import StaffFactory, Tree
from tests.receiver import running_receiver
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console

pytestmark = pytest.mark.usefixtures("loopback_allowed")

WAIT_S = 30.0  # how long a test waits for something that must happen; never a measure


def wait_for(condition: Callable[[], bool]) -> None:
    """The page's worker (tests.web.conftest) sends deliveries in the background."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "nothing was delivered"
        time.sleep(0.05)


def test_developer_adds_a_webhook_reads_its_log_and_redelivers(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    resp = api.post(
        "/api/v1/oauth-clients",
        json={
            "org_id": tree.city_a,
            "name": "职工书屋",
            "kind": "confidential",
            "redirect_uris": ["https://books.example.com/cb"],
            "scope": "openid",
        },
        headers=developer.headers,
    )
    assert resp.status_code == 201, resp.text
    sign_in_to_console(desktop, developer.username)
    desktop.get_by_role("link", name="开放平台").click()
    desktop.get_by_role("link", name="Webhook 推送").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Webhook 推送 · 职工书屋")
    with running_receiver() as receiver:
        desktop.get_by_label("接收地址").fill(receiver.url)
        desktop.get_by_label("会员认证通过").check()
        desktop.get_by_role("button", name="添加").click()
        secret = desktop.locator("section.secret dd code").nth(1)
        expect(secret).to_contain_text("whsec_")
        expect(desktop.get_by_text("密钥只显示这一次")).to_be_visible()

        create_member(tree.grassroots_a1x)
        wait_for(lambda: len(receiver.requests) == 1)
        desktop.goto("/console/oauth-clients")
        desktop.get_by_role("link", name="Webhook 推送").click()
        expect(desktop.locator("section.secret")).to_have_count(0)  # never shown again
        desktop.get_by_role("link", name="查看推送记录").click()
        row = desktop.locator("table.webhook-deliveries tbody tr")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("会员认证通过")
        expect(row).to_contain_text("已送达")
        expect(row.locator("td").nth(4)).to_have_text("1")
        expect(row.locator("td").nth(5)).to_have_text("200")
        assert axe(desktop) == []
        shot(desktop, "console-oauth-webhooks")
        row.get_by_role("button", name="重新推送").click()
        expect(desktop.get_by_role("status")).to_contain_text("已安排重新推送")
        wait_for(lambda: len(receiver.requests) == 2)
    assert [r.status for r in receiver.requests] == [200, 200]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1

"""The console's sidebar lists the sections a staff member can use, and each one it lists
opens for them without a refusal."""

from __future__ import annotations

import re

import httpx

from gonghui.orgs.models import Role
from tests.console.helpers import console
from tests.fixtures import StaffFactory, Tree

EVERYONE = ["/console/", "/console/orgs", "/console/staff", "/console/judging"]
ADMIN = [
    *EVERYONE[:3],
    "/console/roster",
    "/console/roster/entries",
    "/console/reviews",
    "/console/activities",
    "/console/news",
    "/console/risk",
    "/console/judging",
    "/console/questions",
    "/console/merchants",
    "/console/mall",
    "/console/analytics",
    "/console/notifications",
    "/console/oauth-clients",
    "/console/apps",
    "/console/audit",
    "/console/security",
]
EXPECTED = {
    Role.ADMIN: ADMIN,
    # All the admin's but the developer portal and the audit log.
    Role.OPERATOR: [p for p in ADMIN if p not in {"/console/apps", "/console/audit"}],
    Role.AUDITOR: [
        *EVERYONE[:3],
        "/console/roster/entries",
        "/console/judging",
        "/console/analytics",
        "/console/notifications",
        # Where apps ask to read the roster, which an auditor may approve.
        "/console/oauth-clients",
        "/console/audit",
        "/console/security",
    ],
    Role.DEVELOPER: [
        *EVERYONE,
        "/console/oauth-clients",
        "/console/apps",
        "/console/security",
    ],
}
PLATFORM = ["/console/queue", "/console/reconciliation"]


def _sidebar(page: httpx.Response) -> list[str]:
    found = re.search(r'<nav class="sidebar"[^>]*>(.*?)</nav>', page.text, re.S)
    assert found, page.text[:300]
    return re.findall(r'href="([^"]+)"', found.group(1))


def test_each_role_is_offered_the_sections_it_can_use_and_each_opens(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    for role, expected in EXPECTED.items():
        page = console(api, make_staff(tree.city_a, role))
        assert _sidebar(page.get("/console/")) == expected, role
        for href in expected:
            opened = page.get(href)
            assert opened.status_code == 200, (role, href, opened.status_code)
            assert 'role="alert"' not in opened.text, (role, href)
            assert _sidebar(opened) == expected, (role, href)
    # Pages a role is not offered refuse it (others narrow to what it may see).
    operator = console(api, make_staff(tree.city_b, Role.OPERATOR))
    assert operator.get("/console/audit").status_code == 403
    assert operator.get("/console/queue").status_code == 403
    developer = console(api, make_staff(tree.city_b, Role.DEVELOPER))
    assert developer.get("/console/analytics").status_code == 403
    assert developer.get("/console/audit").status_code == 403
    # The home page's figures follow: an operator's activities and reviews; no zeros for a
    # developer, who sees neither.
    shown = operator.get("/console/").text
    assert ('id="kpi-live"' in shown, 'id="kpi-reviews"' in shown, 'id="live-h"' in shown) == (
        True,
        True,
        True,
    )
    shown = developer.get("/console/").text
    assert ('id="home-figures"' in shown, 'id="live-h"' in shown) == (False, False)
    assert 'id="alerts-h"' in shown


def test_the_platform_admin_is_offered_the_deployments_pages_too(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    page = console(api, make_staff(None, None, platform_admin=True))
    assert _sidebar(page.get("/console/")) == [*ADMIN, *PLATFORM]
    for href in PLATFORM:
        assert page.get(href).status_code == 200


def test_a_section_not_offered_is_closed_every_page_of_it(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    developer = console(api, make_staff(tree.city_b, Role.DEVELOPER))
    as_browser = {**developer.cookie, "Accept": "text/html,application/xhtml+xml"}
    for path in (
        "/console/mall",
        "/console/mall/orders",
        "/console/roster",
        "/console/roster/entries/1",
        "/console/activities/1/stats",
        "/console/audit",
        "/console/queue",
    ):
        page = api.get(path, headers=as_browser)
        assert page.status_code == 403, (path, page.status_code)
        assert "您的角色不能使用这个栏目" in page.text, path
        assert _sidebar(page) == EXPECTED[Role.DEVELOPER], path
    # A form sent to a closed section is refused before it is read.
    sent = api.post("/console/mall/products", data={"csrf": "x"}, headers=as_browser)
    assert sent.status_code == 403
    # A client that does not ask for a page gets the one error envelope.
    refused = developer.get("/console/mall")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "console.section_closed"
    # Its own sections, and pages of no section, open.
    assert api.get("/console/apps", headers=as_browser).status_code == 200
    assert api.get("/console/services", headers=as_browser).status_code == 200

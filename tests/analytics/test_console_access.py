"""The console's analytics page and exports as other people open them: a member signed in
on the same site is sent to the staff sign-in, and staff of another org get nothing of
an org outside their subtree."""

from __future__ import annotations

import httpx

from gonghui.analytics import aggregate
from gonghui.orgs.models import Role
from gonghui.web.session import ACCESS_COOKIE
from tests.analytics.conftest import Story
from tests.fixtures import StaffFactory, Tree


def _cookie(headers: dict[str, str]) -> dict[str, str]:
    return {ACCESS_COOKIE: headers["Authorization"].removeprefix("Bearer ")}


def test_a_member_session_is_sent_to_the_staff_sign_in(
    server: str, tree: Tree, story: Story
) -> None:
    aggregate.recompute()
    member = story.a_members[0]
    with httpx.Client(base_url=server, cookies=_cookie(member.headers)) as browser:
        for resp in (
            browser.get(f"/console/analytics?org_id={tree.city_a}"),
            browser.get(f"/console/analytics/monthly.xlsx?org_id={tree.city_a}"),
        ):
            assert resp.status_code == 303
            assert resp.headers["location"].startswith("/console/login?next=")
            assert "kpi-verified" not in resp.text
        resp = browser.post("/console/analytics/refresh", data={"csrf": "x"})
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/console/login")


def test_staff_of_another_org_get_nothing_of_it(
    server: str, tree: Tree, story: Story, make_staff: StaffFactory
) -> None:
    aggregate.recompute()
    other = make_staff(tree.city_b, Role.OPERATOR)
    with httpx.Client(base_url=server, cookies=_cookie(other.headers)) as browser:
        page = browser.get(f"/console/analytics?org_id={tree.city_a}")
        assert page.status_code == 404
        assert "kpi-verified" not in page.text
        assert "广州市总工会" not in page.text
        export = browser.get(f"/console/analytics/activities.xlsx?org_id={tree.province}")
        assert export.status_code == 404
        assert "十一月抽奖" not in export.text
        own = browser.get("/console/analytics")
        assert own.status_code == 200
        assert 'id="kpi-verified">2<' in own.text  # city B's two verified members
        assert "十一月抽奖" not in own.text  # the province's activity is not city B's
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    with httpx.Client(base_url=server, cookies=_cookie(auditor.headers)) as browser:
        assert browser.get("/console/analytics").status_code == 200
    developer = make_staff(tree.city_a, Role.DEVELOPER)
    with httpx.Client(base_url=server, cookies=_cookie(developer.headers)) as browser:
        # A developer's roles do not open the section at all (console/nav.py).
        refused = browser.get("/console/analytics", headers={"Accept": "text/html"})
        assert refused.status_code == 403
        assert "您的角色不能使用这个栏目" in refused.text

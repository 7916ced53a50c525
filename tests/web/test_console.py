"""An operator uses the console in a real browser."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_wrong_password_shows_an_error_and_no_session(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a, Role.ADMIN)
    desktop.goto("/console/login")
    shot(desktop, "console-login")
    assert axe(desktop) == []
    desktop.get_by_label("用户名").fill(staff.username)
    desktop.get_by_label("密码").fill("wrong-password-123")
    desktop.get_by_role("button", name="登录").click()
    expect(desktop.get_by_role("alert")).to_have_text("用户名或密码不正确")
    desktop.goto("/console/")
    expect(desktop).to_have_url("/console/login?next=%2Fconsole%2F")


def test_city_operator_sees_only_their_subtree_and_adds_a_district(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    sign_in_to_console(desktop, admin.username)
    expect(desktop.locator(".roles")).to_contain_text("管理员 广州市总工会")
    shot(desktop, "console-home")
    assert axe(desktop) == []

    desktop.get_by_role("link", name="组织架构").click()
    tree_view = desktop.locator(".tree")
    expect(tree_view).to_contain_text("天河软件园工会")
    expect(tree_view).not_to_contain_text("深圳")
    expect(desktop.get_by_text("共 3 个组织")).to_be_visible()

    desktop.get_by_label("上级组织").select_option(label="广州市总工会")
    desktop.get_by_label("名称").fill("越秀区总工会")
    desktop.get_by_label("代码").fill("GZ-YX")
    desktop.get_by_label("级别").select_option(label="区县级")
    desktop.get_by_role("button", name="创建").click()
    expect(desktop.get_by_role("status")).to_have_text("已创建：越秀区总工会")
    expect(desktop.get_by_text("共 4 个组织")).to_be_visible()
    shot(desktop, "console-orgs")
    assert axe(desktop) == []


def test_auditor_reads_the_audit_log_in_english(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    auditor = make_staff(tree.province, Role.AUDITOR)
    sign_in_to_console(desktop, auditor.username)
    desktop.goto("/console/audit?lang=en")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Audit log")
    rows = desktop.locator("tbody tr")
    expect(rows).to_have_count(7)  # six org creations and the auditor's role grant
    # Details read as written, Chinese and all (not as \u escapes).
    expect(rows.filter(has_text="orgs.create").last).to_contain_text('"name": "广东省总工会"')
    desktop.get_by_label("Action").fill("staff.grant")
    desktop.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("staff.grant")
    shot(desktop, "console-audit-en")
    assert axe(desktop) == []
    # The language choice sticks across pages.
    desktop.get_by_role("link", name="Home").click()
    expect(desktop.get_by_role("heading", level=1)).to_contain_text("Welcome")


def test_the_audit_log_names_staff_by_username_and_filters_by_either(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    newcomer = make_staff(None)
    granted = api.post(
        f"/api/v1/orgs/{tree.city_a}/staff",
        json={"user_id": newcomer.user_id, "role": "operator"},
        headers=admin.headers,
    )
    assert granted.status_code == 201, granted.text
    auditor = make_staff(tree.province, Role.AUDITOR)
    sign_in_to_console(desktop, auditor.username)
    desktop.goto("/console/audit")
    rows = desktop.locator("tbody tr")
    actors = rows.locator("td:nth-child(3)")
    expect(actors.filter(has_text=f"{admin.username} #{admin.user_id}")).to_have_count(1)
    for who in (admin.username, str(admin.user_id)):
        desktop.get_by_label("操作人").fill(who)
        desktop.get_by_role("button", name="筛选").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("staff.grant")
        expect(rows.first).to_contain_text(f"{admin.username} #{admin.user_id}")
        # The subject, the staff member granted a role, by name too.
        expect(rows.first.locator("td:nth-child(4)")).to_have_text(
            f"{newcomer.username} #{newcomer.user_id}"
        )
    shot(desktop, "console-audit-by-username")
    desktop.get_by_label("操作人").fill("nobody-here")
    desktop.get_by_role("button", name="筛选").click()
    expect(desktop.get_by_role("alert")).to_have_text("没有用户名或 ID 为“nobody-here”的用户")
    expect(rows).to_have_count(0)
    assert axe(desktop) == []


@pytest.mark.expected_console_errors("status of 403")
def test_operator_cannot_open_the_audit_log(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    response = desktop.goto("/console/audit")
    assert response is not None
    assert response.status == 403
    expect(desktop.get_by_role("alert")).to_have_text("您的角色不能使用这个栏目")


@pytest.mark.expected_console_errors("status of 404", "status of 422")
def test_a_page_that_is_not_there_is_a_page_that_says_so(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    sign_in_to_console(desktop, admin.username)
    # An activity that does not exist (a stale link): the console's frame, and a way home.
    response = desktop.goto("/console/activities/987654")
    assert response is not None
    assert response.status == 404
    expect(desktop.get_by_role("heading", level=1)).to_have_text("出错了")
    expect(desktop.get_by_role("alert")).to_have_text("活动不存在或无权访问")
    sidebar = desktop.get_by_role("navigation", name="主导航")
    expect(sidebar.get_by_role("link", name="活动管理")).to_have_attribute("aria-current", "page")
    shot(desktop, "console-not-found")
    assert axe(desktop) == []
    desktop.get_by_role("link", name="返回首页").click()
    expect(desktop).to_have_url("/console/")
    # A link the server cannot read, and an address of no page: a page too, in English.
    for path, status, text in (
        ("/console/activities/abc?lang=en", 422, "This link is not valid"),
        ("/console/no-such-page", 404, "Not found, or deleted"),
        ("/h5/no-such-page", 404, "Not found, or deleted"),
    ):
        response = desktop.goto(path)
        assert response is not None
        assert response.status == status, path
        expect(desktop.get_by_role("alert")).to_contain_text(text)


def test_sign_out_ends_the_session(desktop: Page, tree: Tree, make_staff: StaffFactory) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    sign_in_to_console(desktop, admin.username)
    desktop.get_by_role("button", name="退出登录").click()
    expect(desktop).to_have_url("/console/login")
    desktop.goto("/console/orgs")
    expect(desktop).to_have_url("/console/login?next=%2Fconsole%2Forgs")


def test_signing_out_ends_the_session_for_the_api_too(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    sign_in_to_console(desktop, admin.username)
    token = next(c["value"] for c in desktop.context.cookies() if c["name"] == "gh_at")
    desktop.get_by_role("button", name="退出登录").click()
    expect(desktop).to_have_url("/console/login")
    desktop.goto("/console/")
    expect(desktop).to_have_url("/console/login?next=%2Fconsole%2F")
    me = desktop.request.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 401
    assert me.json()["error"]["code"] == "accounts.session_revoked"

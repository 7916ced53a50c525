"""A staff member turns on two-step sign-in in the console and signs in with it."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from gonghui import clock
from gonghui.orgs.models import Role
from tests.fixtures import PASSWORD, StaffFactory, Tree, totp_code_now, wrong_totp_code
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_staff_enrols_totp_and_signs_in_with_a_code(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, staff.username)
    desktop.get_by_role("link", name="账号安全").click()
    expect(desktop.get_by_text("未开启")).to_be_visible()
    shot(desktop, "console-security-off")
    assert axe(desktop) == []

    desktop.get_by_role("button", name="开启两步验证").click()
    qr = desktop.get_by_role("img", name="两步验证二维码，也可手动输入下方密钥")
    expect(qr).to_be_visible()
    assert qr.locator("svg").count() == 1
    secret = desktop.locator("code.secret").inner_text()
    assert len(secret) == 32
    shot(desktop, "console-security-enrol")
    assert axe(desktop) == []

    desktop.get_by_label("6 位动态码").fill(wrong_totp_code(secret))
    desktop.get_by_role("button", name="确认开启").click()
    expect(desktop.get_by_role("alert")).to_have_text("动态码不正确")
    # Still pending, with the same key shown again.
    expect(desktop.locator("code.secret")).to_have_text(secret)
    confirming = totp_code_now(secret)
    desktop.get_by_label("6 位动态码").fill(confirming)
    desktop.get_by_role("button", name="确认开启").click()
    expect(desktop.get_by_role("status")).to_have_text("两步验证已开启")
    expect(desktop.get_by_text("已开启", exact=True)).to_be_visible()
    shot(desktop, "console-security-on")
    assert axe(desktop) == []

    desktop.get_by_role("button", name="退出登录").click()
    desktop.get_by_label("用户名").fill(staff.username)
    desktop.get_by_label("密码").fill(PASSWORD)
    desktop.get_by_role("button", name="登录").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("两步验证")
    shot(desktop, "console-login-totp")
    assert axe(desktop) == []
    # The confirming code's step is spent: the same code is refused (the code itself, not
    # "the code now": real time may have crossed into the next 30-second step meanwhile).
    desktop.get_by_label("6 位动态码").fill(confirming)
    desktop.get_by_role("button", name="验证并登录").click()
    expect(desktop.get_by_role("alert")).to_have_text("该动态码已使用，请等待下一个")
    clock.advance(timedelta(seconds=30))
    desktop.get_by_label("6 位动态码").fill(totp_code_now(secret))
    desktop.get_by_role("button", name="验证并登录").click()
    expect(desktop.get_by_role("heading", level=1)).to_contain_text("欢迎")

    desktop.get_by_role("link", name="账号安全").click()
    clock.advance(timedelta(seconds=30))
    desktop.get_by_label("6 位动态码").fill(totp_code_now(secret))
    desktop.get_by_role("button", name="关闭两步验证").click()
    expect(desktop.get_by_role("status")).to_have_text("两步验证已关闭")
    expect(desktop.get_by_text("未开启")).to_be_visible()

    desktop.goto("/console/security?lang=en")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Account security")
    expect(desktop.get_by_role("button", name="Turn on two-step sign-in")).to_be_visible()
    shot(desktop, "console-security-en")

"""Steps the browser stories share: signing in to the console and to the H5."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.fixtures import PASSWORD


def sign_in_to_console(page: Page, username: str) -> None:
    page.goto("/console/")
    expect(page).to_have_url("/console/login?next=%2Fconsole%2F")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("欢迎")


def sign_in_by_phone(page: Page, phone: str) -> None:
    page.goto("/h5/")
    expect(page).to_have_url("/h5/login")
    page.get_by_label("手机号").fill(phone)
    page.get_by_role("button", name="获取验证码").click()
    expect(page.get_by_role("status")).to_contain_text("验证码已发送至")
    # The development SMS sink shows the code on the page.
    note = page.get_by_role("note")
    expect(note).to_contain_text("开发环境短信")
    code = note.inner_text().split()[-1]
    assert code.isdigit()
    page.get_by_label("验证码").fill(code)
    page.get_by_role("button", name="登录").click()


def verify_membership(page: Page, name: str, id_number: str) -> None:
    """On the verification page a new sign-in lands on: claim the roster entry."""
    page.get_by_label("姓名").fill(name)
    page.get_by_label("身份证号").fill(id_number)
    page.get_by_role("button", name="提交认证").click()
    expect(page.get_by_role("status")).to_have_text("认证成功，欢迎加入！")

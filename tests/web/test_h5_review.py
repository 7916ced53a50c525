"""A member whose verification fails asks for a manual review from the H5 app with a proof
photo; an operator approves it in the console and the member is verified."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.activities.conftest import id_number
from tests.fixtures import StaffFactory, Tree, proof_png
from tests.web.conftest import axe, loaded_width, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console


def test_member_asks_for_review_and_is_verified_once_approved(
    phone: Page, desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    sign_in_by_phone(phone, "13900007001")
    expect(phone).to_have_url("/h5/verify")
    phone.get_by_label("姓名").fill("刘新")
    phone.get_by_label("身份证号").fill(id_number(601))
    phone.get_by_role("button", name="提交认证").click()
    expect(phone.get_by_role("alert")).to_have_text("姓名或身份证号与会员名册不符")
    shot(phone, "h5-verify-review-offer")
    assert axe(phone) == []
    phone.get_by_role("button", name="申请人工审核").click()

    expect(phone.get_by_role("heading", level=1)).to_have_text("申请人工审核")
    # What the member typed is carried over.
    expect(phone.get_by_label("身份证号")).to_have_value(id_number(601))
    expect(phone.get_by_label("姓名")).to_have_value("刘新")
    phone.get_by_label("所在工会代码").fill("NO-SUCH")
    phone.get_by_label("证明材料照片").set_input_files(
        files=[{"name": "会员证.png", "mimeType": "image/png", "buffer": proof_png()}]
    )
    phone.get_by_role("button", name="提交审核申请").click()
    expect(phone.get_by_role("alert")).to_have_text("未找到该工会代码，请向所在工会核实")
    expect(phone.get_by_label("所在工会代码")).to_have_attribute("aria-invalid", "true")
    shot(phone, "h5-review-form")
    assert axe(phone) == []

    phone.get_by_label("所在工会代码").fill("GZ-TH-01")
    phone.get_by_label("证明材料照片").set_input_files(
        files=[{"name": "会员证.png", "mimeType": "image/png", "buffer": proof_png()}]
    )
    phone.get_by_label("补充说明（选填）").fill("今年新入职")
    phone.get_by_role("button", name="提交审核申请").click()
    expect(phone).to_have_url("/h5/verify?requested=1")
    expect(phone.get_by_role("status")).to_have_text("审核申请已提交，请耐心等待工会审核")
    expect(phone.locator(".review-status")).to_contain_text("审核中")
    shot(phone, "h5-review-pending")
    assert axe(phone) == []
    # No second request while one is pending.
    phone.get_by_label("姓名").fill("刘新")
    phone.get_by_label("身份证号").fill(id_number(601))
    phone.get_by_role("button", name="提交认证").click()
    expect(phone.get_by_role("alert")).to_be_visible()
    expect(phone.get_by_role("button", name="申请人工审核")).to_have_count(0)

    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="认证审核").click()
    card = desktop.locator("article.review", has_text="刘*")
    expect(card).to_contain_text("今年新入职")
    proof = desktop.get_by_role("img", name="刘* 提交的证明材料")
    expect(proof).to_be_visible()
    assert loaded_width(proof) == 16
    card.get_by_role("button", name="通过").click()
    expect(desktop.get_by_role("status")).to_have_text("已通过")

    phone.goto("/h5/verify")
    expect(phone).to_have_url("/h5/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("会员活动")
    shot(phone, "h5-review-approved-hub")

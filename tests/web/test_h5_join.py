"""A worker on no roster applies to join a grassroots union from the H5 app; the union's
operator approves in the console beside the verification reviews, and the worker is then a
verified member who sees the hub and their membership history."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import id_number
from tests.fixtures import StaffFactory, Tree, proof_png
from tests.web.conftest import axe, loaded_width, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console, verify_membership


def test_worker_applies_to_join_and_is_a_member_once_approved(
    phone: Page, desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    sign_in_by_phone(phone, "13900007101")
    expect(phone).to_have_url("/h5/verify")
    phone.get_by_role("link", name="不在名册中？申请入会").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("申请入会")
    # Find the union by name within the city.
    phone.get_by_label("所在市、区").select_option(label="广州市总工会")
    phone.get_by_label("工会名称").fill("软件园")
    phone.get_by_role("button", name="查找").click()
    expect(phone.get_by_role("heading", name="找到 1 个接受入会申请的工会")).to_be_visible()
    shot(phone, "h5-join-search")
    assert axe(phone) == []
    phone.get_by_role("link", name="天河软件园工会").click()

    expect(phone.get_by_role("heading", name="申请加入：天河软件园工会")).to_be_visible()
    # The phone the worker signed in with is filled in.
    expect(phone.get_by_label("手机号")).to_have_value("13900007101")
    phone.get_by_label("姓名").fill("林新")
    phone.get_by_label("身份证号").fill(id_number(701))
    phone.get_by_label("工作单位").fill("广州某软件有限公司")
    phone.get_by_label("岗位").fill("测试工程师")
    phone.get_by_role("button", name="提交入会申请").click()
    expect(phone.get_by_role("alert")).to_have_text("请上传证明材料照片")
    expect(phone.get_by_label("姓名")).to_have_value("林新")
    phone.get_by_label("证明材料照片（劳动合同、工作证等）").set_input_files(
        files=[{"name": "劳动合同.png", "mimeType": "image/png", "buffer": proof_png()}]
    )
    shot(phone, "h5-join-form")
    assert axe(phone) == []
    phone.get_by_role("button", name="提交入会申请").click()
    expect(phone).to_have_url("/h5/membership?done=applied")
    expect(phone.get_by_role("status")).to_have_text("入会申请已提交，请等待工会审核")
    request = phone.locator("article.membership-request")
    expect(request).to_contain_text("入会申请 · 天河软件园工会")
    expect(request).to_contain_text("审核中")
    shot(phone, "h5-membership-pending")
    assert axe(phone) == []

    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="认证审核").click()
    desktop.get_by_role("link", name="入会申请").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("入会申请")
    card = desktop.locator("article.review", has_text="林*")
    expect(card).to_contain_text("139****7101")
    expect(card).to_contain_text("测试工程师")
    proof = desktop.get_by_role("img", name="林* 提交的证明材料")
    expect(proof).to_be_visible()
    assert loaded_width(proof) == 16
    shot(desktop, "console-join-requests")
    assert axe(desktop) == []
    card.get_by_label("审核意见").fill("欢迎加入")
    card.get_by_role("button", name="同意入会").click()
    expect(desktop.get_by_role("status")).to_have_text("已通过")
    expect(desktop.get_by_text("没有待审核的申请")).to_be_visible()

    phone.goto("/h5/verify")
    expect(phone).to_have_url("/h5/")
    expect(phone.get_by_role("heading", level=1)).to_have_text("会员活动")
    shot(phone, "h5-join-approved-hub")
    assert axe(phone) == []
    phone.goto("/h5/wallet")
    phone.get_by_role("link", name="我的会籍记录").click()
    expect(phone.locator(".card", has_text="所在工会")).to_contain_text("天河软件园工会")
    request = phone.locator("article.membership-request")
    expect(request).to_contain_text("已通过")
    expect(request).to_contain_text("审核意见：欢迎加入")
    shot(phone, "h5-membership-history")
    assert axe(phone) == []


def test_member_moves_to_another_union_and_later_leaves(
    phone: Page, desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    """A member asks from the H5 to move to a union in another city; that union's operator
    accepts in the console; later the member asks to leave and the union confirms; each
    step shows in the member's history and the console's queues."""
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="周敏", id_number=id_number(702)
        )
    sign_in_by_phone(phone, "13900007102")
    verify_membership(phone, "周敏", id_number(702))
    phone.goto("/h5/membership")
    expect(phone.locator(".card", has_text="所在工会")).to_contain_text("天河软件园工会")
    phone.get_by_role("link", name="申请转会").click()
    phone.get_by_label("所在工会代码").fill("SZ-NS-01")
    phone.get_by_role("button", name="选择该工会").click()
    expect(phone.get_by_role("heading", name="转入：南山科技园工会")).to_be_visible()
    phone.get_by_label("原因（选填）").fill("工作调动到深圳")
    shot(phone, "h5-membership-transfer")
    assert axe(phone) == []
    phone.get_by_role("button", name="提交转会申请").click()
    expect(phone).to_have_url("/h5/membership?done=transfer")
    expect(phone.get_by_role("status")).to_have_text("转会申请已提交，请等待转入工会审核")
    request = phone.locator("article.membership-request", has_text="转会申请")
    expect(request).to_contain_text("转会申请 · 南山科技园工会")
    expect(request).to_contain_text("转出：天河软件园工会")
    expect(request).to_contain_text("审核中")

    receiving = make_staff(tree.city_b, Role.OPERATOR)
    sign_in_to_console(desktop, receiving.username)
    desktop.goto("/console/membership-requests?kind=transfer")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("转入申请")
    card = desktop.locator("article.review", has_text="周*")
    expect(card).to_contain_text("转出单位：天河软件园工会")
    expect(card).to_contain_text("工作调动到深圳")
    shot(desktop, "console-transfer-requests")
    assert axe(desktop) == []
    card.get_by_label("审核意见").fill("欢迎来深圳")
    card.get_by_role("button", name="同意转入").click()
    expect(desktop.get_by_role("status")).to_have_text("已通过")

    phone.goto("/h5/membership")
    expect(phone.locator(".card", has_text="所在工会")).to_contain_text("南山科技园工会")
    expect(request).to_contain_text("已通过")
    expect(request).to_contain_text("审核意见：欢迎来深圳")
    phone.get_by_text("申请退会").click()
    phone.get_by_label("原因（选填）").fill("退休")
    phone.get_by_role("button", name="提交退会申请").click()
    expect(phone.get_by_role("status")).to_have_text("退会申请已提交，请等待工会确认")

    desktop.goto("/console/membership-requests?kind=leave")
    card = desktop.locator("article.review", has_text="周*")
    expect(card).to_contain_text("退休")
    card.get_by_role("button", name="确认退会").click()
    expect(desktop.get_by_role("status")).to_have_text("已通过")
    assert axe(desktop) == []

    phone.goto("/h5/membership")
    leave = phone.locator("article.membership-request", has_text="退会申请")
    expect(leave).to_contain_text("退会申请 · 南山科技园工会")
    expect(leave).to_contain_text("已通过")
    expect(phone.locator(".card", has_text="所在工会")).to_have_count(0)
    shot(phone, "h5-membership-left")
    assert axe(phone) == []

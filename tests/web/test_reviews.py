"""An operator works through the verification review queue in a real browser."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.activities.conftest import id_number
from tests.fixtures import PhoneUserFactory, StaffFactory, Tree, request_review
from tests.web.conftest import axe, loaded_width, shot
from tests.web.pages import sign_in_to_console


def test_operator_sees_the_proof_and_decides(
    desktop: Page,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_phone_user: PhoneUserFactory,
) -> None:
    first, second = make_phone_user(), make_phone_user()
    for user, name, n in ((first, "刘新", 501), (second, "周游", 502)):
        resp = request_review(api, user.headers, tree.grassroots_a1x, name, id_number(n))
        assert resp.status_code == 201, resp.text
    op = make_staff(tree.city_a, Role.OPERATOR)
    sign_in_to_console(desktop, op.username)
    desktop.get_by_role("link", name="认证审核").click()
    expect(desktop.get_by_text("待审核 2 条")).to_be_visible()
    proof = desktop.get_by_role("img", name="刘* 提交的证明材料")
    expect(proof).to_be_visible()
    assert loaded_width(proof) == 16
    shot(desktop, "console-reviews")
    assert axe(desktop) == []

    card = desktop.locator("article.review", has_text="刘*")
    card.get_by_role("button", name="通过").click()
    expect(desktop.get_by_role("status")).to_have_text("已通过")
    expect(desktop.get_by_text("待审核 1 条")).to_be_visible()
    card = desktop.locator("article.review", has_text="周*")
    card.get_by_role("button", name="驳回").click()
    expect(desktop.get_by_role("alert")).to_have_text("驳回时请填写审核意见")
    card = desktop.locator("article.review", has_text="周*")
    card.get_by_label("审核意见").fill("证明材料不清晰")
    card.get_by_role("button", name="驳回").click()
    expect(desktop.get_by_role("status")).to_have_text("已驳回")
    expect(desktop.get_by_text("没有待审核的申请")).to_be_visible()
    approved = api.get("/api/v1/members/me", headers=first.headers).json()
    assert (approved["status"], approved["org"]["id"]) == ("verified", tree.grassroots_a1x)
    rejected = api.get("/api/v1/members/me", headers=second.headers).json()
    assert rejected["membership_id"] is None

"""Operators use the console pages for what was API-only, in a real browser: staff roles,
the roster with its audited unmask, prize shipping, cloning an activity, and the home
dashboard."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.accounts.access import issue_access_token
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members.models import Membership, RosterEntry
from gonghui.orgs.models import Role, StaffRole
from gonghui.pii import PiiField, unseal
from gonghui.web.session import ACCESS_COOKIE
from tests.activities.conftest import (
    create_activity,
    create_member,
    draw,
    id_number,
    lottery_config,
)
from tests.fixtures import PhoneUserFactory, StaffFactory, Tree, request_review
from tests.members.conftest import apply as apply_to_join
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console

ADDRESS = {"name": "张三", "phone": "13800138000", "address": "广州市天河区软件路1号"}


def test_admin_grants_and_revokes_a_staff_role(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    newcomer = make_staff(None)
    sign_in_to_console(desktop, admin.username)
    desktop.get_by_role("link", name="工作人员").click()
    desktop.get_by_label("组织").select_option(label="天河区总工会")
    desktop.get_by_role("button", name="查看").click()
    expect(desktop.get_by_role("heading", name="天河区总工会的工作人员")).to_be_visible()
    desktop.get_by_label("用户名").fill(newcomer.username)
    desktop.get_by_label("角色", exact=True).select_option(label="经办人")
    desktop.get_by_role("button", name="授予", exact=True).click()
    expect(desktop.get_by_role("status")).to_have_text("已授予角色")
    row = desktop.locator("#staff-table tbody tr", has_text=newcomer.username)
    expect(row).to_contain_text("经办人")
    shot(desktop, "console-staff")
    assert axe(desktop) == []

    desktop.get_by_role("button", name=f"撤销 {newcomer.username} 的经办人角色").click()
    expect(desktop.get_by_role("status")).to_have_text("已撤销角色")
    expect(desktop.locator("#staff-table")).to_have_count(0)
    with unit_of_work(read_only=True) as session:
        assert (
            session.scalars(select(StaffRole).where(StaffRole.org_id == tree.district_a1)).all()
            == []
        )


def test_operator_finds_a_member_and_unmasks_one_field(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    member = create_member(tree.grassroots_a1x, name="王芳")
    create_member(tree.grassroots_a1x, name="李雷")
    sign_in_to_console(desktop, operator.username)
    desktop.get_by_role("link", name="名册查询").click()
    rows = desktop.locator("#entries-table tbody tr")
    expect(rows).to_have_count(2)
    with unit_of_work(read_only=True) as session:
        membership = session.get(Membership, member.membership_id)
        assert membership is not None
        entry = session.get(RosterEntry, membership.roster_entry_id)
        assert entry is not None
        number = unseal(PiiField.ID_NUMBER, entry.id_number_enc)
    desktop.get_by_label("身份证号").fill(number)
    desktop.get_by_role("button", name="查找").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("王*")
    expect(rows.first).not_to_contain_text("王芳")
    expect(rows.first).not_to_contain_text(number)
    desktop.get_by_label("身份证号").fill("")
    desktop.get_by_label("姓名").fill("李雷")
    desktop.get_by_role("button", name="查找").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("李*")
    desktop.get_by_label("姓名").fill("")
    desktop.get_by_label("身份证号").fill(number)
    desktop.get_by_role("button", name="查找").click()
    expect(rows).to_have_count(1)
    shot(desktop, "console-roster-entries")
    assert axe(desktop) == []

    rows.first.get_by_role("link", name="详情").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("会员 王*")
    desktop.get_by_label("字段").select_option(label="身份证号")
    desktop.get_by_label("查看原因").fill("核对会员身份")
    desktop.get_by_role("button", name="查看明文").click()
    revealed = desktop.locator("#revealed")
    expect(revealed).to_contain_text("身份证号明文：")
    shot(desktop, "console-roster-entry-unmasked")
    assert axe(desktop) == []
    shown = revealed.locator("strong").inner_text()
    with unit_of_work(read_only=True) as session:
        audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "pii.unmask")).all()
    assert [(a.actor_user_id, a.field, a.reason, a.subject_type) for a in audits] == [
        (operator.user_id, "id_number", "核对会员身份", "roster_entry")
    ]
    assert shown == number
    # Opened again, the page is masked.
    desktop.goto(f"/console/roster/entries/{entry.id}")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("会员 王*")
    expect(desktop.locator("#revealed")).to_have_count(0)


def test_operator_ships_a_prize_and_the_member_sees_the_tracking_number(
    desktop: Page, phone: Page, server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    config = lottery_config(
        [{"name": "电饭煲", "kind": "physical", "weight": 1, "stock": 5}], address_deadline_hours=24
    )
    activity = create_activity(api, operator.headers, tree.city_a, title="年货抽奖", config=config)
    winner = create_member(tree.city_a, name="张三")
    prize_id = int(draw(api, activity["id"], winner.headers).json()["benefit"].split(":")[1])
    given = api.post(f"/api/v1/me/prizes/{prize_id}/address", json=ADDRESS, headers=winner.headers)
    assert given.status_code == 200, given.text

    sign_in_to_console(desktop, operator.username)
    desktop.goto(f"/console/activities/{activity['id']}")
    desktop.get_by_role("link", name="奖品发货").click()
    row = desktop.locator(f"#prize-{prize_id}")
    expect(row).to_contain_text("待发货")
    expect(row).to_contain_text("138****8000")
    row.get_by_label("快递公司").fill("顺丰速运")
    row.get_by_label("运单号").fill("SF1234567890")
    row.get_by_role("button", name="发货").click()
    expect(desktop.get_by_role("status")).to_have_text("已发货")
    expect(row).to_contain_text("顺丰速运 运单号 SF1234567890")
    shot(desktop, "console-prizes")
    assert axe(desktop) == []

    token = issue_access_token(user_id=winner.user_id, session_id=winner.session_id)
    phone.context.add_cookies([{"name": ACCESS_COOKIE, "value": token, "url": server}])
    phone.goto("/h5/wallet")
    prize = phone.locator("article.prize", has_text="电饭煲")
    expect(prize).to_contain_text("已发货")
    expect(prize).to_contain_text("顺丰速运 运单号 SF1234567890")
    shot(phone, "h5-wallet-prize-shipped")


def test_operator_clones_an_activity_and_lands_on_the_draft(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(api, operator.headers, tree.city_a, title="三八节抽奖")
    sign_in_to_console(desktop, operator.username)
    desktop.goto(f"/console/activities/{activity['id']}")
    desktop.get_by_role("button", name="复制活动").click()
    expect(desktop.get_by_role("status")).to_have_text("已复制为新的草稿活动，检查后即可发布")
    assert not desktop.url.endswith(f"/console/activities/{activity['id']}")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("三八节抽奖")
    expect(desktop.locator("#kpi-status")).to_have_text("草稿")
    shot(desktop, "console-activity-cloned")
    assert axe(desktop) == []


def test_home_dashboard_shows_a_live_activity_and_a_pending_review(
    desktop: Page,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_phone_user: PhoneUserFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    create_activity(api, operator.headers, tree.city_a, title="五一劳动节抽奖")
    applicant = make_phone_user()
    asked = request_review(api, applicant.headers, tree.grassroots_a1x, "赵六", id_number(777))
    assert asked.status_code == 201, asked.text
    worker = make_phone_user()
    applied = apply_to_join(api, worker.headers, tree.grassroots_a1x)
    assert applied.status_code == 201, applied.text

    sign_in_to_console(desktop, operator.username)
    expect(desktop.locator("#kpi-live .kpi-value")).to_have_text("1")
    expect(desktop.locator("#kpi-reviews .kpi-value")).to_have_text("1")
    expect(desktop.locator("#kpi-applications .kpi-value")).to_have_text("1")
    expect(desktop.locator("#live-list")).to_contain_text("五一劳动节抽奖")
    expect(desktop.locator(".roles")).to_contain_text("经办人 广州市总工会")
    shot(desktop, "console-home-dashboard")
    assert axe(desktop) == []
    desktop.locator("#kpi-reviews").click()
    expect(desktop).to_have_url("/console/reviews")
    desktop.go_back()
    desktop.locator("#kpi-live").click()
    expect(desktop.locator("tbody tr")).to_have_count(1)
    expect(desktop.locator("tbody")).to_contain_text("五一劳动节抽奖")

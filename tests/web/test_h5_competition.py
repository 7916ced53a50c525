"""A member registers for a competition on the H5 (the form the organiser designed as a
BaaS table, its questions labelled), is told which answer is missing, then submits a file."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from gonghui import clock
from gonghui.activities.competition.models import Entry
from gonghui.baas.models import StoredFile
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from gonghui.web.session import ACCESS_COOKIE
from tests.activities.competition.conftest import competition_config, make_form_app
from tests.activities.conftest import create_activity, create_member, id_number
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, verify_membership


@pytest.mark.expected_console_errors("status of 422")  # the refused form comes back
def test_member_registers_and_submits_a_file(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    app = make_form_app(api, tree.city_a)
    config = competition_config(app.id)
    config["competition"]["form"]["labels"] = {"title": "作品名称", "pitch": "作品简介"}
    op = make_staff(tree.city_a, Role.OPERATOR)
    aid = create_activity(
        api,
        op.headers,
        tree.city_a,
        title="职工技能大赛",
        config=config,
        ends_at=(clock.now() + timedelta(days=30)).isoformat(),
    )["id"]
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="陈静", id_number=id_number(3)
        )
    sign_in_by_phone(phone, "13900003003")
    verify_membership(phone, "陈静", id_number(3))

    phone.goto(f"/h5/activities/{aid}")
    expect(phone.get_by_role("heading", name="报名参赛")).to_be_visible()
    # The required answer missing: refused, with the field named and nothing written.
    phone.get_by_label("作品简介").fill("改进数控车床的刀具路径")
    phone.get_by_role("button", name="提交报名").click()
    expect(phone.get_by_role("alert").first).to_be_visible()
    expect(phone.locator("#answer-title-error")).to_have_text("必填")
    expect(phone.get_by_label("作品简介")).to_have_value("改进数控车床的刀具路径")
    with unit_of_work(read_only=True) as session:
        assert session.scalars(select(Entry)).all() == []
    shot(phone, "h5-competition-form")
    assert axe(phone) == []

    phone.get_by_label("作品名称").fill("数控车削工艺改进")
    phone.get_by_role("button", name="提交报名").click()
    expect(phone.get_by_role("status")).to_have_text("报名成功，请在截止前提交作品")
    expect(phone.get_by_role("heading", name="我的报名")).to_be_visible()

    phone.get_by_label("作品文件（最多 5 个）").set_input_files(
        files=[{"name": "工艺说明.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 x"}]
    )
    phone.get_by_role("button", name="提交作品文件").click()
    expect(phone.get_by_role("status")).to_have_text("作品文件已提交")
    expect(phone.locator("#contest-files li")).to_have_text(["工艺说明.pdf"])
    shot(phone, "h5-competition-entry")
    assert axe(phone) == []
    with unit_of_work(read_only=True) as session:
        (entry,) = session.scalars(select(Entry)).all()
        (file_id,) = entry.file_ids
        stored = session.get(StoredFile, file_id)
        assert stored is not None
        assert stored.app_id == app.id
        assert entry.submitted_at is not None


def test_a_captain_starts_a_team_and_a_teammate_joins_with_its_code(
    phone: Page,
    browser: Browser,
    server: str,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
) -> None:
    app = make_form_app(api, tree.city_a)
    config = competition_config(app.id, teams=True)  # 2 to 3 members a team
    config["competition"]["form"]["labels"] = {"title": "作品名称"}
    op = make_staff(tree.city_a, Role.OPERATOR)
    aid = create_activity(
        api,
        op.headers,
        tree.city_a,
        title="班组技能比武",
        config=config,
        ends_at=(clock.now() + timedelta(days=30)).isoformat(),
    )["id"]
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="周强", id_number=id_number(4)
        )
    sign_in_by_phone(phone, "13900003004")
    verify_membership(phone, "周强", id_number(4))

    phone.goto(f"/h5/activities/{aid}")
    phone.get_by_label("队伍名称").fill("车工一组")
    phone.get_by_label("作品名称").fill("数控车削工艺改进")
    phone.get_by_role("button", name="提交报名").click()
    expect(phone.get_by_role("status")).to_have_text("报名成功，请在截止前提交作品")
    expect(phone.get_by_text("队伍人数 1（2–3 人）")).to_be_visible()
    expect(phone.get_by_text("队伍至少需要 2 人才能参加评审")).to_be_visible()
    code = phone.locator("#invite-code").inner_text()
    assert len(code) == 8
    shot(phone, "h5-competition-team-captain")
    assert axe(phone) == []

    mate = create_member(tree.grassroots_a1x, name="吴敏")
    context = browser.new_context(
        base_url=server, locale="zh-CN", viewport={"width": 375, "height": 667}, is_mobile=True
    )
    try:
        context.add_cookies(
            [
                {
                    "name": ACCESS_COOKIE,
                    "value": mate.headers["Authorization"].removeprefix("Bearer "),
                    "url": server,
                }
            ]
        )
        page = context.new_page()
        page.goto(f"/h5/activities/{aid}")
        page.get_by_label("队伍邀请码").fill("WRONG123")
        page.get_by_role("button", name="加入队伍").click()
        expect(page.get_by_role("alert")).to_contain_text("邀请码不正确或已失效")
        page.get_by_label("队伍邀请码").fill(code.lower())
        page.get_by_role("button", name="加入队伍").click()
        expect(page.get_by_role("status")).to_have_text("已加入队伍")
        expect(page.get_by_text("队伍人数 2（2–3 人）")).to_be_visible()
        expect(page.get_by_text("车工一组")).to_be_visible()
        assert axe(page) == []
    finally:
        context.close()
    phone.reload()
    expect(phone.get_by_text("队伍人数 2（2–3 人）")).to_be_visible()
    expect(phone.get_by_text("队伍至少需要 2 人才能参加评审")).to_have_count(0)

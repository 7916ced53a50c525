"""An organiser runs a competition's judging from the console: a panel, its judge named
by sign-in name, the entries handed over, the panel closed and the ranking published."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from gonghui.orgs.models import Role
from tests.activities.competition.conftest import make_form_app, new_competition, register, upload
from tests.activities.conftest import create_activity, create_member
from tests.activities.vote.conftest import vote_config
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_organiser_runs_the_judging_and_publishes(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    competition = new_competition(api, tree, make_staff, make_form_app(api, tree.city_a))
    crafted = {}  # membership id → the craft score the judge gives their entry
    for n, name in enumerate(["王师傅", "李工匠"]):
        member = create_member(tree.grassroots_a1x if n == 0 else tree.city_a, name=name)
        crafted[member.membership_id] = 9 - n
        assert register(api, competition, member.headers).status_code == 201
        file_id = upload(api, competition.app, member.headers, f"entry{n}.pdf")
        api.put(
            f"/api/v1/activities/{competition.id}/competition/registration/files",
            json={"file_ids": [file_id]},
            headers=member.headers,
        ).raise_for_status()
    judge = make_staff(tree.province, Role.AUDITOR)
    organiser = make_staff(tree.city_a, Role.OPERATOR)

    sign_in_to_console(desktop, organiser.username)
    desktop.goto(f"/console/activities/{competition.id}")
    desktop.get_by_role("link", name="报名与评审").click()
    expect(desktop.get_by_role("heading", name="报名作品（2）")).to_be_visible()
    desktop.get_by_label("评审组名称").fill("第一评审组")
    desktop.get_by_role("button", name="新建评审组").click()
    expect(desktop.get_by_role("status")).to_have_text("评审组已创建")
    desktop.get_by_label("第一评审组的评委登录名").fill("nobody-here")
    desktop.get_by_role("button", name="加入评委").click()
    expect(desktop.get_by_role("alert")).to_have_text("找不到该登录名的工作人员账号")
    desktop.get_by_label("第一评审组的评委登录名").fill(judge.username)
    desktop.get_by_role("button", name="加入评委").click()
    expect(desktop.get_by_role("status")).to_have_text("评委已加入")
    expect(desktop.locator(".panel-row")).to_contain_text("作品 0 件")
    for box in desktop.locator("#entries tbody input[type=checkbox]").all():
        box.check()
    desktop.get_by_role("button", name="分配所选作品").click()
    expect(desktop.get_by_role("status")).to_have_text("作品已分配")
    expect(desktop.locator(".panel-row")).to_contain_text("作品 2 件")
    expect(desktop.locator("#entries tbody tr").first).to_contain_text("第一评审组")
    shot(desktop, "console-competition")
    assert axe(desktop) == []

    # The judge scores both (over the API here; the judging page has its own test):
    # 王师傅's entry higher.
    entries = api.get(
        f"/api/v1/activities/{competition.id}/competition/entries", headers=organiser.headers
    ).json()
    for entry in entries:
        api.put(
            f"/api/v1/competition/panels/{entry['panel_id']}/judging/{entry['code']}/scores",
            json={"scores": {"craft": crafted[entry["captain_membership_id"]], "novelty": 5}},
            headers=judge.headers,
        ).raise_for_status()
    desktop.reload()
    expect(desktop.locator("#contest-ranking tbody tr")).to_have_count(2)
    expect(desktop.get_by_text("所有评审组结束评审后可公布结果")).to_be_visible()
    desktop.get_by_role("button", name="结束评审（第一评审组）").click()
    expect(desktop.get_by_role("status")).to_have_text("评审组已结束评审，评分不再变化")
    desktop.get_by_role("button", name="公布结果").click()
    expect(desktop.get_by_role("status")).to_have_text("结果已公布")
    public = api.get(f"/api/v1/public/competitions/{competition.id}/results").json()
    assert public["published"] is True
    assert [line["names"] for line in public["lines"]] == [["王师傅"], ["李工匠"]]

    # Then the ranked entries go to a public vote of the union.
    expect(desktop.get_by_text("本单位还没有可用的评选投票")).to_be_visible()
    vote = create_activity(
        api, organiser.headers, tree.city_a, config=vote_config(), title="技能大赛人气投票"
    )
    desktop.reload()
    desktop.get_by_label("评选投票").select_option(label="技能大赛人气投票")
    desktop.get_by_role("button", name="加入公众投票").click()
    expect(desktop.get_by_role("status")).to_have_text("获奖作品已加入公众投票")
    expect(desktop.get_by_role("link", name="查看投票")).to_have_attribute(
        "href", f"/console/activities/{vote['id']}"
    )
    shot(desktop, "console-competition-public-vote")
    assert axe(desktop) == []
    standing = api.get(
        f"/api/v1/activities/{vote['id']}/nominations", headers=organiser.headers
    ).json()
    assert sorted(c["name"] for c in standing) == ["李工匠", "王师傅"]
    assert {c["status"] for c in standing} == {"approved"}

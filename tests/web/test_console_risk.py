"""An operator reviews the risk flags of their unions: the evidence in words, a jumping
candidate's votes one click away, each flag confirmed or dismissed with a note."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.risk import flags
from gonghui.risk.models import Flag, FlagKind, FlagStatus
from tests.activities.vote.conftest import approved_candidates, people_of, vote_activity
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_operator_reviews_flags_and_follows_a_jump_to_the_votes(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    people = people_of(tree, make_staff)
    aid = vote_activity(api, tree, people.organiser)["id"]
    (cid,) = approved_candidates(api, aid, tree, people, ["王师傅"])
    flags.raise_flag(
        kind=FlagKind.TARGET_JUMP,
        subject=f"target:vote:{aid}:candidate:{cid}",
        org_id=tree.city_a,
        activity_id=aid,
        window=1,
        evidence={"this_minute": 51, "mean_per_minute_before": 1.5, "minutes_compared": 10},
    )
    flags.raise_flag(
        kind=FlagKind.NETWORK_ACCOUNTS,
        subject="net:203.0.113.0/24",
        org_id=tree.city_a,
        activity_id=aid,
        window=1,
        evidence={"network": "203.0.113.0/24", "accounts": 31, "window_s": 600, "threshold": 30},
    )
    # Another city's flag is not this operator's to see.
    flags.raise_flag(
        kind=FlagKind.NETWORK_ACCOUNTS,
        subject="net:198.51.100.0/24",
        org_id=tree.city_b,
        activity_id=None,
        window=1,
        evidence={"network": "198.51.100.0/24", "accounts": 40, "window_s": 600, "threshold": 30},
    )

    sign_in_to_console(desktop, people.organiser.username)
    desktop.get_by_role("link", name="风险提示").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("风险提示")
    cards = desktop.locator("article.flag")
    expect(cards).to_have_count(2)
    jump = cards.filter(has_text="候选人票数突增")
    expect(jump).to_contain_text("本分钟 51 票，此前 10 分钟平均每分钟 1.5 票")
    network = cards.filter(has_text="同一网络账号过多")
    expect(network).to_contain_text("600 秒内有 31 个账号来自同一网络 203.0.113.0/24（阈值 30）")
    expect(desktop.get_by_text("198.51.100.0/24")).to_have_count(0)
    shot(desktop, "console-risk")
    assert axe(desktop) == []

    jump.get_by_role("link", name="查看该候选人的投票记录").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("投票记录 · 2026年度劳模评选")
    expect(desktop.get_by_label("候选人")).to_have_value(str(cid))
    desktop.go_back()

    network.get_by_label("处理说明").fill("某厂共用出口网络")
    network.get_by_role("button", name="忽略").click()
    expect(desktop.get_by_role("status")).to_have_text("已忽略")
    expect(cards).to_have_count(1)
    cards.get_by_role("button", name="确认异常").click()
    expect(desktop.get_by_role("status")).to_have_text("已确认")
    expect(desktop.get_by_text("没有风险提示")).to_be_visible()
    desktop.get_by_label("状态").select_option(label="已忽略")
    desktop.get_by_role("button", name="筛选").click()
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text("某厂共用出口网络")
    with unit_of_work(read_only=True) as session:
        jumped = session.scalars(select(Flag).where(Flag.kind == FlagKind.TARGET_JUMP)).one()
        assert jumped.status == FlagStatus.CONFIRMED
        assert jumped.reviewed_by == people.organiser.user_id


def test_operator_sets_an_activitys_risk_limits_by_hand(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    people = people_of(tree, make_staff)
    aid = vote_activity(api, tree, people.organiser)["id"]
    sign_in_to_console(desktop, people.organiser.username)
    desktop.goto(f"/console/activities/{aid}")
    desktop.get_by_role("link", name="风控阈值").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("风控阈值")
    account = desktop.get_by_role("group", name="每个账号")
    expect(account.get_by_label("达到此数需验证")).to_have_value("20")
    assert axe(desktop) == []
    shot(desktop, "console-risk-limits")

    # A bad value comes back on its field; nothing is saved.
    account.get_by_label("达到此数需验证").fill("0")
    desktop.get_by_role("button", name="保存").click()
    expect(account.get_by_role("alert")).to_have_text("请填写正整数，或留空")
    assert api.get(
        f"/api/v1/activities/{aid}/risk-limits", headers=people.organiser.headers
    ).json()["account"] == {"challenge": 20, "refuse": 60}

    account.get_by_label("达到此数需验证").fill("5")
    account.get_by_label("超过此数拒绝").fill("")
    desktop.get_by_label("待处理风险提示达到此数时自动暂停活动").fill("3")
    desktop.get_by_label("缺少设备标识的请求需验证").uncheck()
    desktop.get_by_role("button", name="保存").click()
    expect(desktop.get_by_role("status")).to_have_text("风控阈值已保存，所有服务器立即生效。")
    saved = api.get(f"/api/v1/activities/{aid}/risk-limits", headers=people.organiser.headers)
    body = saved.json()
    assert body["account"] == {"challenge": 5, "refuse": None}
    assert body["pause_after_flags"] == 3
    assert body["require_device_id"] is False
    assert body["device"] == {"challenge": 30, "refuse": 120}  # untouched boxes keep theirs
    expect(desktop.get_by_label("待处理风险提示达到此数时自动暂停活动")).to_have_value("3")

    # Staff of another city neither see nor set this activity's limits.
    other = make_staff(tree.city_b, Role.ADMIN)
    assert api.get(f"/api/v1/activities/{aid}/risk-limits", headers=other.headers).status_code in (
        403,
        404,
    )

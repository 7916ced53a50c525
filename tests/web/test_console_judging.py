"""A judge scores on a tablet: their panels, the entries by code only with their files,
every criterion within its range, and stepping aside from an entry."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui.activities.competition.models import Score
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.competition.conftest import (
    judged_competition,
    make_form_app,
    new_competition,
)
from tests.activities.conftest import create_member
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console

TABLET = {"width": 1024, "height": 768}


def test_judge_scores_entries_by_code_and_steps_aside_from_one(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    app = make_form_app(api, tree.city_a)
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(
        api,
        tree,
        lambda: new_competition(api, tree, make_staff, app),
        lambda org_id, name: create_member(org_id, name=name),
        [judge],
    )
    codes = sorted(e["code"] for e in judged.entries.values())
    desktop.set_viewport_size(TABLET)
    sign_in_to_console(desktop, judge.username)
    desktop.get_by_role("link", name="评审任务").click()
    task = desktop.get_by_role("link", name="职工技能大赛 · 第一评审组")
    expect(desktop.locator(".judge-task")).to_contain_text("已评 0 / 2 件")
    task.click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("职工技能大赛 · 第一评审组")
    expect(desktop.locator("#rubric tbody tr")).to_have_count(2)
    cards = desktop.locator("article.judge-entry")
    expect(cards).to_have_count(2)
    # Blind: codes and files only.
    main = desktop.locator("main")
    for name in ("王师傅", "李工匠", "天河", "数控车削"):
        expect(main).not_to_contain_text(name)
    first = cards.filter(has_text=codes[0])
    link = first.get_by_role("link", name="作品文件 1")
    expect(link).to_have_attribute("href", re.compile(r"name=submission-\d+\.pdf&"))
    shot(desktop, "console-judging")
    assert axe(desktop) == []

    # Out of range: refused, nothing saved.
    first.get_by_label("工艺").fill("11")
    first.get_by_label("创新").fill("7")
    first.get_by_label("工艺").evaluate("input => input.removeAttribute('max')")
    first.get_by_role("button", name=f"保存评分（作品 {codes[0]}）").click()
    expect(desktop.get_by_role("alert")).to_have_text("请为每个评分项填写范围内的整数")
    first.get_by_label("工艺").fill("9")
    first.get_by_label("创新").fill("7")
    first.get_by_role("button", name=f"保存评分（作品 {codes[0]}）").click()
    expect(desktop.get_by_role("status")).to_have_text("评分已保存")
    expect(first).to_contain_text("已评分")
    expect(first.get_by_label("工艺")).to_have_value("9")

    second = cards.filter(has_text=codes[1])
    second.get_by_role("button", name=f"申报回避（作品 {codes[1]}）").click()
    expect(desktop.get_by_role("status")).to_have_text("已申报回避，该作品不再由您评审")
    expect(cards).to_have_count(1)
    desktop.get_by_role("link", name="返回评审任务").click()
    expect(desktop.locator(".judge-task")).to_contain_text("已评 1 / 1 件")
    with unit_of_work(read_only=True) as session:
        (saved,) = session.scalars(select(Score)).all()
    assert saved.scores == {"craft": 9, "novelty": 7}
    assert saved.judge_user_id == judge.user_id

"""A member finds last month's published results from the H5 hub (结果公示) after the
activities' own pages have closed: the competition's ranking and the vote's frozen totals
with the hash of its log."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from gonghui.web.session import ACCESS_COOKIE
from tests.activities.competition.conftest import make_form_app, new_competition, results_story
from tests.activities.conftest import create_member
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot


def test_a_member_reads_published_rankings_and_vote_results(
    phone: Page, server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    app = make_form_app(api, tree.city_a)
    story = results_story(
        api, tree, lambda: new_competition(api, tree, make_staff, app), create_member, make_staff
    )
    token = story.reader.headers["Authorization"].removeprefix("Bearer ")
    phone.context.add_cookies([{"name": ACCESS_COOKIE, "value": token, "url": server}])

    phone.goto("/h5/")
    phone.get_by_role("link", name="结果公示：比赛排名与评选结果").click()
    expect(phone.get_by_role("heading", name="结果公示", level=1)).to_be_visible()
    cards = phone.locator("#results-list > li")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("2026年度劳模评选")
    expect(cards.nth(0)).to_contain_text("张劳模 3 票")
    expect(cards.nth(1)).to_contain_text("职工技能大赛")
    expect(cards.nth(1)).to_contain_text("王师傅")
    shot(phone, "h5-results-list")
    assert axe(phone) == []

    phone.get_by_role("link", name="职工技能大赛").click()
    ranking = phone.locator("ol.contest-results > li")
    expect(ranking.nth(0)).to_contain_text("王师傅")
    expect(ranking.nth(1)).to_contain_text("李工匠")
    assert axe(phone) == []

    phone.get_by_role("link", name="‹ 返回结果公示").click()
    phone.get_by_role("link", name="2026年度劳模评选").click()
    expect(phone.get_by_role("heading", name="投票结果")).to_be_visible()
    expect(phone.get_by_text(story.log_hash)).to_be_visible()
    expect(phone.get_by_text("投票记录共 5 条，其中作废 0 条。")).to_be_visible()
    tied = phone.locator('ol.contest-results > li[value="2"]')  # one vote each: both second
    expect(tied).to_have_count(2)
    shot(phone, "h5-results-vote")
    assert axe(phone) == []

"""An organiser previews a draft vote's rules from its page: what members will be able to
cast, and what does not add up, before publishing."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.activities.conftest import create_activity
from tests.activities.vote.conftest import approved_candidates, people_of, vote_config
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_organiser_previews_a_draft_vote(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    people = people_of(tree, make_staff)
    draft = create_activity(
        api,
        people.organiser.headers,
        tree.city_a,
        publish=False,
        title="2026年度劳模评选",
        config=vote_config(votes_per_day=3, votes_per_candidate_per_day=1),
    )
    approved_candidates(api, draft["id"], tree, people, ["张三", "李四"])
    sign_in_to_console(desktop, people.organiser.username)
    desktop.goto(f"/console/activities/{draft['id']}")
    desktop.get_by_role("link", name="预览投票规则").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("投票规则预览 · 2026年度劳模评选")
    # Two candidates at one vote a day each: two of the three daily votes can be spent.
    member = desktop.locator("#vote-preview-member")
    expect(member.locator(".kpi").nth(0)).to_contain_text("第一天最多可投2")
    expect(desktop.locator("#vote-preview-warnings li")).to_have_text(
        ["候选人太少：按每人每天对同一候选人的票数上限，会员用不完每天的票。"]
    )
    expect(desktop.locator("#vote-preview-rules")).to_contain_text("不限")
    shot(desktop, "console-vote-preview")
    assert axe(desktop) == []
    resp = api.get(f"/api/v1/activities/{draft['id']}", headers=people.organiser.headers)
    assert resp.json()["status"] == "draft"

"""An organiser runs a praise vote from the console: reviews the nominations (approve, or
reject with a reason), watches the ranking while members vote, and freezes the result
once the vote has ended."""

from __future__ import annotations

import io
import re

import httpx
from PIL import Image
from playwright.sync_api import Page, expect

from gonghui.activities.vote.models import Candidate, CandidateStatus
from gonghui.db import unit_of_work
from tests.activities.conftest import create_member
from tests.activities.vote.conftest import (
    media_app_key,
    nominate,
    people_of,
    upload_file,
    vote,
    vote_activity,
)
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def test_organiser_reviews_nominations_watches_the_ranking_and_freezes_the_result(
    desktop: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    people = people_of(tree, make_staff)
    aid = vote_activity(api, tree, people.organiser, votes_per_day=2)["id"]
    key = media_app_key(api, tree.district_a1)
    picture = io.BytesIO()
    Image.new("RGB", (400, 400), (30, 90, 160)).save(picture, "PNG")
    photo = upload_file(api, key, people.district.headers, "wang.png", picture.getvalue())
    ids = {
        name: nominate(api, aid, people.district, tree.district_a1, name, **extra).json()["id"]
        for name, extra in (("王师傅", {"photo_file_id": photo}), ("李师傅", {}), ("孙师傅", {}))
    }

    sign_in_to_console(desktop, people.organiser.username)
    desktop.goto(f"/console/activities/{aid}")
    desktop.get_by_role("link", name="候选人与排名").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("候选人与排名 · 2026年度劳模评选")
    expect(desktop.get_by_role("heading", name="待审核提名（3）")).to_be_visible()
    wang = desktop.locator(".nomination").filter(has_text="王师傅")
    expect(wang).to_contain_text("天河区总工会")
    expect(wang).to_contain_text("王师傅的先进事迹")
    thumb = wang.locator("img")
    desktop.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    shot(desktop, "console-vote-queue")
    assert axe(desktop) == []

    desktop.get_by_role("button", name="通过王师傅").click()
    expect(desktop.get_by_role("status")).to_have_text("已通过，会员现在可以为该候选人投票")
    expect(desktop.get_by_role("heading", name="待审核提名（2）")).to_be_visible()
    desktop.get_by_role("button", name="通过孙师傅").click()
    expect(desktop.get_by_role("heading", name="待审核提名（1）")).to_be_visible()
    # A rejection needs its reason: the form does not go without one.
    desktop.get_by_role("button", name="驳回李师傅").click()
    expect(desktop.get_by_role("heading", name="待审核提名（1）")).to_be_visible()
    desktop.get_by_label("驳回李师傅的理由").fill("事迹材料不全")
    desktop.get_by_role("button", name="驳回李师傅").click()
    expect(desktop.get_by_role("status")).to_have_text("已驳回")
    expect(desktop.get_by_text("没有待审核的提名")).to_be_visible()
    with unit_of_work(read_only=True) as session:
        li = session.get(Candidate, ids["李师傅"])
        assert li is not None
        assert li.status == CandidateStatus.REJECTED
        assert li.review_reason == "事迹材料不全"

    # Members vote; the ranking refreshes by itself while the page is open.
    rows = desktop.locator("#ranking-table tbody tr")
    expect(rows).to_have_count(2)
    for _ in range(3):
        member = create_member(tree.grassroots_a1x)
        assert vote(api, aid, member.headers, ids["孙师傅"]).status_code == 201
    member = create_member(tree.grassroots_a1x)
    assert vote(api, aid, member.headers, ids["王师傅"]).status_code == 201
    expect(rows.nth(0)).to_contain_text("孙师傅", timeout=12_000)
    expect(rows.nth(0).locator("td").nth(4)).to_have_text("3")
    expect(rows.nth(1).locator("td").nth(4)).to_have_text("1")
    expect(desktop.locator("#vote-ranking")).to_contain_text("共 4 票")

    # A brushed vote is voided from the log: it stays there, marked, and counts no more.
    desktop.get_by_role("link", name="投票记录").click()
    expect(desktop.locator("#vote-log tbody tr")).to_have_count(4)
    desktop.get_by_label("候选人").select_option(label="孙师傅")
    desktop.get_by_role("button", name="筛选").click()
    log = desktop.locator("#vote-log tbody tr")
    expect(log).to_have_count(3)
    newest = log.nth(0).locator("td").nth(0).inner_text()
    desktop.get_by_label(f"作废第 {newest} 号票的理由").fill("同一网络刷票")
    desktop.get_by_role("button", name=f"作废第 {newest} 号票").click()
    expect(desktop.get_by_role("status")).to_have_text("已作废，候选人票数已减少")
    expect(desktop).to_have_url(re.compile(r"candidate=\d+"))
    expect(log.nth(0)).to_contain_text("已作废：同一网络刷票")
    shot(desktop, "console-vote-log")
    assert axe(desktop) == []
    desktop.get_by_role("link", name="返回候选人与排名").click()
    expect(rows.nth(0).locator("td").nth(4)).to_have_text("2")
    expect(desktop.locator("#vote-ranking")).to_contain_text("共 3 票")

    # Not before the end; then once.
    expect(desktop.get_by_text("投票结束后可锁定并公布结果")).to_be_visible()
    api.post(f"/api/v1/activities/{aid}/end", headers=people.organiser.headers).raise_for_status()
    desktop.reload()
    desktop.get_by_role("button", name="锁定并公布结果").click()
    expect(desktop.get_by_role("status")).to_have_text("结果已锁定并公布")
    result = desktop.locator("#vote-result")
    expect(result).to_contain_text("4")  # log entries, the voided one too
    expect(result.locator("code.hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    published = api.get(f"/api/v1/public/votes/{aid}/results").json()
    expect(result.locator("code.hash")).to_have_text(published["log_hash"])
    expect(desktop.get_by_role("button", name="锁定并公布结果")).to_have_count(0)
    shot(desktop, "console-vote-result")
    assert axe(desktop) == []

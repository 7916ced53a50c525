"""A member votes in a praise vote on the H5: the candidates with their photos, a vote
button each, the votes left after every vote, the limits as messages, a candidate's page."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from gonghui.activities.vote import results
from gonghui.activities.vote.models import Vote
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import id_number
from tests.activities.vote.conftest import (
    MP4,
    People,
    media_app_key,
    nominate,
    people_of,
    upload_file,
    vote_activity,
)
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, verify_membership


def _approve(api: httpx.Client, activity_id: int, people: People, candidate_id: int) -> None:
    api.post(
        f"/api/v1/activities/{activity_id}/nominations/{candidate_id}/review",
        json={"decision": "approve"},
        headers=people.organiser.headers,
    ).raise_for_status()


def test_member_votes_for_candidates_within_the_limits(
    phone: Page,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    people = people_of(tree, make_staff)
    monkeypatch.setattr(results, "RANKING_TTL_S", 0.0)  # counts as of each page load
    aid = vote_activity(api, tree, people.organiser, votes_per_day=2)["id"]
    key = media_app_key(api, tree.district_a1)
    picture = io.BytesIO()
    Image.new("RGB", (600, 800), (180, 40, 40)).save(picture, "PNG")
    photo = upload_file(api, key, people.district.headers, "wang.png", picture.getvalue())
    video = upload_file(api, key, people.district.headers, "wang.mp4", MP4)
    wang = nominate(
        api,
        aid,
        people.district,
        tree.district_a1,
        "王师傅",
        category="",
        photo_file_id=photo,
        video_file_id=video,
    ).json()["id"]
    li = nominate(api, aid, people.district, tree.district_a1, "李师傅").json()["id"]
    _approve(api, aid, people, wang)
    _approve(api, aid, people, li)
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="赵敏", id_number=id_number(5)
        )
    sign_in_by_phone(phone, "13900005005")
    verify_membership(phone, "赵敏", id_number(5))

    phone.goto(f"/h5/activities/{aid}")
    expect(phone.get_by_role("heading", level=1)).to_have_text("2026年度劳模评选")
    expect(phone.locator("#votes-left")).to_have_text("今日还可投 2 票")
    expect(phone.get_by_text("每天最多为同一位候选人投 1 票")).to_be_visible()
    cards = phone.locator(".candidate-card")
    expect(cards).to_have_count(2)
    wang_card = cards.filter(has_text="王师傅")
    expect(wang_card).to_contain_text("0 票")
    # The photo loaded (its thumbnail, by a signed link).
    thumb = wang_card.locator("img")
    expect(thumb).to_be_visible()
    phone.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )

    phone.get_by_role("button", name="为王师傅投票").click()
    expect(wang_card.get_by_role("status")).to_have_text("投票成功，感谢参与")
    expect(phone.locator("#votes-left")).to_have_text("今日还可投 1 票")
    expect(wang_card.locator(".votes")).to_have_text("1 票")
    # One a day for the same candidate: the second is refused and counts nothing.
    phone.get_by_role("button", name="为王师傅投票").click()
    expect(wang_card.get_by_role("alert")).to_have_text("今天为这位候选人投的票已达上限")
    phone.get_by_role("button", name="为李师傅投票").click()
    li_card = cards.filter(has_text="李师傅")
    expect(li_card.get_by_role("status")).to_have_text("投票成功，感谢参与")
    expect(phone.locator("#votes-left")).to_have_text("今日还可投 0 票")
    expect(li_card.locator(".votes")).to_have_text("1 票")
    expect(wang_card.locator(".votes")).to_have_text("1 票")  # the refused vote counted nothing
    shot(phone, "h5-vote")
    assert axe(phone) == []
    # Today's votes are spent.
    phone.get_by_role("button", name="为李师傅投票").click()
    expect(li_card.get_by_role("alert")).to_have_text("今天的票已投完，明天再来")

    with unit_of_work(read_only=True) as session:
        logged = session.execute(
            select(Vote.candidate_id, func.count())
            .where(Vote.activity_id == aid)
            .group_by(Vote.candidate_id)
        ).all()
    assert dict(logged) == {wang: 1, li: 1}

    phone.get_by_role("link", name="王师傅").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("王师傅")
    expect(phone.locator(".votes")).to_have_text("1 票")
    expect(phone.get_by_text("王师傅的先进事迹")).to_be_visible()
    photo_img = phone.get_by_role("img", name="王师傅的照片")
    expect(photo_img).to_be_visible()
    phone.wait_for_function(
        "img => img.complete && img.naturalWidth === 600", arg=photo_img.element_handle()
    )
    expect(phone.locator("video.candidate-video")).to_have_attribute("aria-label", "王师傅的视频")
    expect(phone.locator("#votes-left")).to_have_text("今日还可投 0 票")
    shot(phone, "h5-vote-candidate")
    assert axe(phone) == []
    phone.get_by_role("link", name="返回候选人列表").click()
    expect(phone.locator(".candidate-card")).to_have_count(2)

"""The H5 hub, a page at a time: "load more" with HTMX, and plain links without it."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from gonghui.db import unit_of_work
from gonghui.h5.hub import HUB_PAGE_SIZE
from gonghui.members import service as members
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import create_activity, id_number
from tests.fixtures import StaffFactory, Tree
from tests.web.conftest import _open, axe, shot
from tests.web.pages import sign_in_by_phone, verify_membership

# Two full pages and a short third one.
COUNT = 2 * HUB_PAGE_SIZE + 5


def _verified_member(phone: Page, n: int, tree: Tree) -> None:
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="李娜", id_number=id_number(n)
        )
    sign_in_by_phone(phone, f"1390000{n:04d}")
    verify_membership(phone, "李娜", id_number(n))


def _titles(phone: Page) -> list[str]:
    return phone.locator("#hub-list .activity-card h2").all_inner_texts()


def test_member_loads_the_whole_hub_page_by_page(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    expected = [f"第{n:02d}期活动" for n in range(COUNT)]
    for n, title in enumerate(expected):
        create_activity(api, op.headers, tree.city_a, title=title, starts_in_hours=-60 + n)
    other = make_staff(tree.city_b, Role.OPERATOR)
    create_activity(api, other.headers, tree.city_b, title="深圳抽奖")
    _verified_member(phone, 11, tree)

    assert _titles(phone) == expected[:HUB_PAGE_SIZE]
    more = phone.get_by_role("link", name="加载更多")
    href = more.get_attribute("href")
    assert href is not None
    assert href.startswith("/h5/?cursor=")
    assert more.get_attribute("hx-get") == href
    shot(phone, "h5-hub-first-page")
    more.scroll_into_view_if_needed()
    # What the member sees at the foot of the first page, as the 375x667 screen shows it.
    shot(phone, "h5-hub-load-more", full_page=False)
    assert axe(phone) == []

    first_url = phone.url
    with phone.expect_request(lambda r: "cursor=" in r.url) as fetched:
        more.click()
    assert fetched.value.headers.get("hx-request") == "true"
    expect(phone.locator("#hub-list .activity-card")).to_have_count(2 * HUB_PAGE_SIZE)
    # The page did not navigate; focus went to the first activity just loaded.
    expect(phone).to_have_url(first_url)
    expect(phone.get_by_role("link", name=expected[HUB_PAGE_SIZE])).to_be_focused()
    assert _titles(phone) == expected[: 2 * HUB_PAGE_SIZE]

    # An impatient double tap still loads the page once.
    phone.get_by_role("link", name="加载更多").dblclick()
    expect(phone.locator("#hub-list .activity-card")).to_have_count(COUNT)
    expect(phone.get_by_text("已显示全部活动")).to_be_visible()
    expect(phone.get_by_role("link", name="加载更多")).to_have_count(0)
    expect(phone.get_by_role("link", name=expected[2 * HUB_PAGE_SIZE])).to_be_focused()
    phone.wait_for_load_state("networkidle")
    # Every activity exactly once, in the hub's order: no duplicates, no gaps.
    assert _titles(phone) == expected
    shot(phone, "h5-hub-all-loaded")
    assert axe(phone) == []

    # Without JavaScript the control is a link to the next page of the hub.
    phone.goto(href)
    assert _titles(phone) == expected[HUB_PAGE_SIZE : 2 * HUB_PAGE_SIZE]
    expect(phone.get_by_role("link", name="回到活动列表第一页")).to_have_attribute("href", "/h5/")
    next_href = phone.get_by_role("link", name="加载更多").get_attribute("href")
    assert next_href is not None
    phone.goto(next_href)
    assert _titles(phone) == expected[2 * HUB_PAGE_SIZE :]
    expect(phone.get_by_text("已显示全部活动")).to_be_visible()


def test_member_without_javascript_follows_the_load_more_link(
    phone: Page,
    browser: Browser,
    server: str,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    expected = [f"第{n:02d}期活动" for n in range(HUB_PAGE_SIZE + 3)]
    for n, title in enumerate(expected):
        create_activity(api, op.headers, tree.city_a, title=title, starts_in_hours=-60 + n)
    _verified_member(phone, 12, tree)
    # The same member, signed in, in a browser with JavaScript off.
    context, page, problems = _open(
        browser,
        server,
        (),
        viewport={"width": 375, "height": 667},
        java_script_enabled=False,
        storage_state=phone.context.storage_state(),
    )
    try:
        page.goto("/h5/")
        assert _titles(page) == expected[:HUB_PAGE_SIZE]
        page.get_by_role("link", name="加载更多").click()
        expect(page).to_have_url(re.compile(r"/h5/\?cursor="))
        assert _titles(page) == expected[HUB_PAGE_SIZE:]
        expect(page.get_by_text("已显示全部活动")).to_be_visible()
        shot(page, "h5-hub-no-js-next-page")
        page.get_by_role("link", name="回到活动列表第一页").click()
        expect(page).to_have_url(re.compile(r"/h5/$"))
        assert _titles(page) == expected[:HUB_PAGE_SIZE]
    finally:
        context.close()
    assert problems.items == []


@pytest.mark.expected_console_errors("status of 400")
def test_a_bad_cursor_gets_a_friendly_page(
    phone: Page, api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    create_activity(api, op.headers, tree.city_a, title="迎新抽奖")
    _verified_member(phone, 13, tree)
    # A well-formed cursor whose time has no zone, gibberish, and a very long one.
    for cursor in ("MjAyNi0xMS0yNFQxNzoxNTo0N3w0MA", "not-a-cursor", "A" * 600):
        response = phone.goto(f"/h5/?cursor={cursor}")
        assert response is not None
        assert response.status == 400
        alert = phone.get_by_role("alert")
        expect(alert).to_have_text("分页链接无效或已过期，请从第一页重新浏览")
    shot(phone, "h5-hub-bad-cursor")
    assert axe(phone) == []
    phone.get_by_role("link", name="回到活动列表第一页").click()
    expect(phone).to_have_url("/h5/")
    assert _titles(phone) == ["迎新抽奖"]

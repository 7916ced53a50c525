"""Browser stories of notifications: a member reads their inbox on the H5; a second staff
member reviews and approves a broadcast in the console."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from playwright.sync_api import Page, expect

from gonghui import clock
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.notifications import broadcasts, reminders
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM, Actor, Grant
from tests.activities.conftest import create_activity
from tests.faults import eventually
from tests.fixtures import StaffFactory, Tree
from tests.notifications.conftest import create_member, id_number
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_by_phone, sign_in_to_console, verify_membership


def _until_listed(page: Page, url: str, text: str) -> None:
    """Reload ``url`` until it shows ``text`` (the worker delivers in the background)."""
    deadline = time.monotonic() + 20
    while True:
        page.goto(url)
        if text in page.locator("main").inner_text() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expect(page.locator("main")).to_contain_text(text)


def test_a_member_reads_the_news_of_their_verification_in_the_inbox(
    phone: Page, tree: Tree, api: httpx.Client, make_staff: StaffFactory
) -> None:
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="陈静", id_number=id_number(31)
        )
    sign_in_by_phone(phone, "13700001234")
    verify_membership(phone, "陈静", id_number(31))

    _until_listed(phone, "/h5/inbox", "会员认证通过")
    expect(phone.get_by_role("heading", level=1)).to_have_text("消息")
    expect(phone.get_by_text("1 条未读").first).to_be_visible()
    expect(phone.get_by_role("heading", name="未读 会员认证通过")).to_be_visible()
    expect(phone.locator("main")).to_contain_text("您已通过天河软件园工会的会员认证。")
    phone.get_by_text("送达情况").click()
    expect(phone.locator("main")).to_contain_text("站内信：已送达")
    assert axe(phone) == []
    shot(phone, "h5-inbox")

    # The SMS went out through the same adapter the sign-in code did: a delivery the
    # worker makes after the inbox row is written, so it may come a moment later.
    def sms_sent() -> bool:
        outbox = phone.request.get("/_sim/sms/outbox", params={"phone": "13700001234"}).json()
        return (
            bool(outbox) and outbox[-1]["text"] == "【工会服务】您已通过天河软件园工会的会员认证。"
        )

    eventually("the verification's SMS in the outbox", sms_sent, within_s=20)

    phone.get_by_role("button", name="将“会员认证通过”标为已读").click()
    expect(phone.get_by_role("status")).to_have_text("0 条未读")
    phone.goto("/h5/")
    expect(phone.get_by_role("link", name="消息").first).to_be_visible()

    # A scheduled activity: "remind me" on its page, and the reminder comes when it starts.
    operator = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api, operator.headers, tree.city_a, starts_in_hours=3, title="新春猜灯谜"
    )
    phone.goto(f"/h5/activities/{activity['id']}")
    phone.get_by_role("button", name="开始时提醒我").click()
    expect(phone.get_by_role("status")).to_have_text("活动开始时会通知您。")
    expect(phone.get_by_role("button", name="取消提醒")).to_be_visible()
    clock.advance(timedelta(hours=3, minutes=1))
    with unit_of_work() as session:
        reminders.send_due(session)  # the worker's periodic job, unless its clock came first
    _until_listed(phone, "/h5/inbox", "您关注的「新春猜灯谜」已经开始，快来参加吧。")


def test_a_second_staff_member_approves_a_broadcast(
    desktop: Page, tree: Tree, make_staff: StaffFactory
) -> None:
    for _ in range(3):
        create_member(tree.grassroots_a1x)
    author = make_staff(tree.city_a, Role.OPERATOR)
    reviewer = make_staff(tree.province, Role.OPERATOR)
    with unit_of_work() as session:
        written = broadcasts.create(
            session,
            actor=Actor(
                user_id=author.user_id,
                grants=(Grant(tree.city_a, f"/{tree.province}/{tree.city_a}/", Role.OPERATOR),),
            ),
            org_id=tree.city_a,
            title="年终慰问品领取通知",
            body="请于12月31日前到所在工会领取年终慰问品。",
            channels=["sms"],
        )
        broadcast_id = written.id

    sign_in_to_console(desktop, reviewer.username)
    desktop.get_by_role("link", name="消息通知").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("消息通知")
    expect(desktop.get_by_role("row").filter(has_text="中奖")).to_have_count(
        4
    )  # inbox, SMS, subscribe message, template message
    assert axe(desktop) == []
    shot(desktop, "console-notification-templates")
    desktop.get_by_role("link", name="群发消息").first.click()
    desktop.get_by_role("link", name="年终慰问品领取通知").click()
    expect(desktop).to_have_url(f"/console/notifications/broadcasts/{broadcast_id}")
    expect(desktop.locator("main")).to_contain_text("待审核")
    expect(desktop.locator("main")).to_contain_text("通过后将发送给 3 名会员。")
    assert axe(desktop) == []
    shot(desktop, "console-broadcast-review")

    desktop.get_by_label("审核意见（可选）").fill("同意发送")
    desktop.get_by_role("button", name="通过并发送").click()
    expect(desktop.get_by_role("status")).to_have_text("已通过，正在分批发送。")
    broadcast_url = f"/console/notifications/broadcasts/{broadcast_id}"
    _until_listed(desktop, broadcast_url, "已发送 3 / 3")
    # The members are told first (the inbox rows), their SMS deliveries run after.
    _until_listed(desktop, broadcast_url, "短信 · 已送达：3")
    assert axe(desktop) == []
    shot(desktop, "console-broadcast-sent")

    desktop.get_by_role("link", name="返回群发消息").click()
    desktop.get_by_role("link", name="返回消息通知").click()
    desktop.get_by_role("link", name="发送记录").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("发送记录")
    expect(desktop.get_by_role("row").filter(has_text="群发消息")).to_have_count(6)
    assert axe(desktop) == []

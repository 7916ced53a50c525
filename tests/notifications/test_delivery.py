"""Delivering notifications: the inbox at once, SMS and WeChat on the queue, under the
member's daily cap and their org's quiet hours."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from gonghui import clock, tasks
from gonghui.db import unit_of_work
from gonghui.integrations import wechat_simulator
from gonghui.integrations.sms import dev_outbox
from gonghui.members import review
from gonghui.notifications import channels, service
from gonghui.notifications.models import Delivery, DeliveryStatus, Event
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.fixtures import StaffFactory, Tree, request_review
from tests.notifications.conftest import (
    MemberFactory,
    deliveries,
    id_number,
    move_clock_to_local,
)


def _notify(org_id: int, user_id: int, event: Event = Event.PRIZE_WON) -> int:
    with unit_of_work() as session:
        n = service.notify(
            session,
            org_id=org_id,
            user_id=user_id,
            event=event,
            variables={"activity": "十二月抽奖", "prize": "电饭煲"},
        )
        return n.id


def test_an_approved_review_reaches_the_inbox_and_the_sms_outbox(
    tree: Tree, api: httpx.Client, make_staff: StaffFactory, make_phone_user: object
) -> None:
    """A member asks for a review; an operator approves it; the worker delivers the news to
    the member's H5 inbox and, through the SMS adapter, to the simulator's outbox."""
    assert callable(make_phone_user)
    user = make_phone_user("13912345678")
    operator = make_staff(tree.city_a, Role.OPERATOR)
    asked = request_review(api, user.headers, tree.grassroots_a1x, "王芳", id_number(7))
    assert asked.status_code == 201, asked.text
    approved = api.post(
        f"/api/v1/members/verification-requests/{asked.json()['id']}/approve",
        json={},
        headers=operator.headers,
    )
    assert approved.status_code == 200, approved.text
    # Nothing is sent in the approving request: it waits for the worker.
    assert api.get("/api/v1/notifications/inbox", headers=user.headers).json()["items"] == []
    assert api.get("/_sim/sms/outbox", params={"phone": user.phone}).json() == []

    assert tasks.run_due() >= 2  # the event's fan-out, then the SMS delivery

    inbox = api.get("/api/v1/notifications/inbox", headers=user.headers).json()
    assert inbox["unread"] == 1
    (item,) = inbox["items"]
    assert item["event"] == "verification_approved"
    assert item["title"] == "会员认证通过"
    assert item["body"] == "您已通过天河软件园工会的会员认证。"
    states = {d["channel"]: (d["status"], d["reason"]) for d in item["deliveries"]}
    assert states == {
        "inbox": ("sent", ""),
        "sms": ("sent", ""),
        "wechat": ("skipped", "no_wechat"),
    }
    (sms,) = api.get("/_sim/sms/outbox", params={"phone": user.phone}).json()
    assert sms["text"] == "【工会服务】您已通过天河软件园工会的会员认证。"

    read = api.post(f"/api/v1/notifications/inbox/{item['id']}/read", headers=user.headers)
    assert read.json() == {"marked": 1}
    assert api.get("/api/v1/notifications/inbox", headers=user.headers).json()["unread"] == 0


def test_the_daily_cap_skips_what_passes_it_but_the_inbox_keeps_everything(
    tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x)  # its verification SMS counts today
    with unit_of_work() as session:
        service.save_rules(
            session,
            actor=SYSTEM,
            org_id=tree.city_a,
            quiet_start_minute=None,
            quiet_end_minute=None,
            daily_cap=2,
        )
    _notify(tree.grassroots_a1x, member.user_id)
    _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()
    sms = [(s, r) for c, s, r in deliveries(member.user_id) if c == "sms"]
    assert sms == [("sent", ""), ("sent", ""), ("skipped", "daily_cap")]
    assert len(dev_outbox(member.phone)) == 2
    inbox = [s for c, s, _ in deliveries(member.user_id) if c == "inbox"]
    assert inbox == ["sent", "sent", "sent"]

    # The next local day has a new allowance.
    clock.advance(timedelta(days=1))
    _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()
    assert len(dev_outbox(member.phone)) == 3


def test_quiet_hours_defer_sms_to_their_end_and_the_inbox_is_written_at_once(
    tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x)
    with unit_of_work() as session:
        service.save_rules(
            session,
            actor=SYSTEM,
            org_id=tree.province,
            quiet_start_minute=22 * 60,
            quiet_end_minute=8 * 60,
            daily_cap=5,
        )
    night = move_clock_to_local(23, 30)
    _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()
    assert deliveries(member.user_id)[-3:] == [
        ("inbox", "sent", ""),
        ("sms", "deferred", "quiet_hours"),
        ("wechat", "deferred", "quiet_hours"),
    ]
    with unit_of_work(read_only=True) as session:
        deferred = session.scalars(
            select(Delivery).where(Delivery.status == DeliveryStatus.DEFERRED)
        ).all()
        morning = (night + timedelta(days=1)).replace(hour=8, minute=0)
        assert [d.send_after for d in deferred] == [morning, morning]
    assert len(dev_outbox(member.phone)) == 1  # only the verification, before the night

    clock.advance(timedelta(hours=8, minutes=29))  # 07:59: still quiet
    tasks.run_due()
    assert len(dev_outbox(member.phone)) == 1
    clock.advance(timedelta(minutes=2))
    tasks.run_due()
    assert deliveries(member.user_id)[-2:] == [
        ("sms", "sent", ""),
        ("wechat", "skipped", "no_wechat"),
    ]
    assert len(dev_outbox(member.phone)) == 2


def test_a_subscribe_message_is_sent_once_per_acceptance(
    tree: Tree, api: httpx.Client, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x, wechat=True)
    assert member.openid is not None
    wechat_simulator.reset()
    template = "platform-prize_won"
    # The member taps "allow" once: WeChat records it, and the H5 tells us.
    wechat_simulator.accept_subscription("wx_sim_mini", member.openid, template)
    accepted = api.post(
        "/api/v1/notifications/subscriptions",
        json={"template_ids": [template]},
        headers=member.headers,
    )
    assert accepted.json() == {"accepted": 1}

    _notify(tree.grassroots_a1x, member.user_id)
    _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()

    wechat = [(s, r) for c, s, r in deliveries(member.user_id) if c == "wechat"]
    assert wechat[-2:] == [("sent", ""), ("skipped", "no_subscription")]
    (sent,) = wechat_simulator.subscribe_messages(member.openid)
    assert sent["template_id"] == template
    assert sent["data"] == {
        "thing1": "中奖通知",
        "thing2": "恭喜您在「十二月抽奖」中获得电饭煲，请在",
    }
    with unit_of_work(read_only=True) as session:
        assert (
            channels.subscriptions_left(session, user_id=member.user_id, template_id=template) == 0
        )


def test_a_subscription_wechat_refuses_is_a_failed_delivery(
    tree: Tree, api: httpx.Client, make_member: MemberFactory
) -> None:
    """Our record says yes but WeChat has no acceptance (43101): failed, with the reason."""
    member = make_member(tree.grassroots_a1x, wechat=True)
    wechat_simulator.reset()
    api.post(
        "/api/v1/notifications/subscriptions",
        json={"template_ids": ["platform-prize_won"]},
        headers=member.headers,
    )
    _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()
    assert deliveries(member.user_id)[-1] == ("wechat", "failed", "wechat.not_subscribed")
    assert wechat_simulator.subscribe_messages(member.openid) == []


def test_an_org_template_is_inherited_by_its_subtree(
    tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x)
    with unit_of_work() as session:
        service.save_template(
            session,
            actor=SYSTEM,
            org_id=tree.city_a,
            event=Event.PRIZE_WON,
            channel=service.Channel.INBOX,
            enabled=True,
            title="广州好运",
            body="$prize 归你了（$activity）",
        )
    _notify(tree.grassroots_a1x, member.user_id)
    with unit_of_work(read_only=True) as session:
        (latest, *_) = service.inbox(session, user_id=member.user_id)
    assert (latest.title, latest.body) == ("广州好运", "电饭煲 归你了（十二月抽奖）")


def test_rejection_notifies_the_member_with_the_note(
    tree: Tree, api: httpx.Client, make_staff: StaffFactory, make_phone_user: object
) -> None:
    assert callable(make_phone_user)
    user = make_phone_user()
    operator = make_staff(tree.city_a, Role.OPERATOR)
    asked = request_review(api, user.headers, tree.grassroots_a1x, "李雷", id_number(9))
    with unit_of_work() as session:
        review.reject(session, actor=SYSTEM, request_id=asked.json()["id"], note="照片不清晰")
    tasks.run_due()
    (item,) = api.get("/api/v1/notifications/inbox", headers=user.headers).json()["items"]
    assert item["body"] == "您在天河软件园工会的会员认证未通过：照片不清晰"
    assert operator.user_id  # staff exist; the member reads only their own

"""Delivering notifications: the inbox at once, SMS and WeChat on the queue, under the
member's daily cap and their org's quiet hours."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from gonghui import clock, tasks
from gonghui.db import unit_of_work
from gonghui.errors import UpstreamError
from gonghui.integrations import wechat_simulator
from gonghui.integrations.errors import IntegrationsError
from gonghui.integrations.sms import DevSmsSink, NoticeMessage, dev_outbox
from gonghui.integrations.wechat import official_account
from gonghui.members import review
from gonghui.notifications import channels, service
from gonghui.notifications.models import DailyCount, Delivery, DeliveryStatus, Event
from gonghui.orgs.models import Role
from gonghui.tasks.models import Task
from gonghui.tenancy import SYSTEM
from tests.fixtures import StaffFactory, Tree, move_clock_to_local, request_review
from tests.notifications.conftest import (
    MemberFactory,
    deliveries,
    id_number,
)


def _notify(org_id: int, user_id: int, event: Event = Event.PRIZE_WON) -> int:
    with unit_of_work() as session:
        return service.notify(
            session,
            service.Notice(org_id, user_id, event, {"activity": "十二月抽奖", "prize": "电饭煲"}),
        )


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
        "wechat_oa": ("skipped", "no_wechat"),
    }
    (sms,) = api.get("/_sim/sms/outbox", params={"phone": user.phone}).json()
    assert sms["text"] == "【工会服务】您已通过天河软件园工会的会员认证。"

    read = api.post(f"/api/v1/notifications/inbox/{item['id']}/read", headers=user.headers)
    assert read.json() == {"marked": 1}
    assert api.get("/api/v1/notifications/inbox", headers=user.headers).json()["unread"] == 0


def test_the_daily_cap_skips_what_passes_it_but_the_inbox_keeps_everything(
    tree: Tree, make_member: MemberFactory
) -> None:
    move_clock_to_local(10)  # far from the local day's end: the counts below share a day
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
    assert deliveries(member.user_id)[-4:] == [
        ("inbox", "sent", ""),
        ("sms", "deferred", "quiet_hours"),
        ("wechat", "skipped", "no_wechat"),  # unreachable: decided at once, never queued
        ("wechat_oa", "skipped", "no_wechat"),
    ]
    with unit_of_work(read_only=True) as session:
        deferred = session.scalars(
            select(Delivery).where(Delivery.status == DeliveryStatus.DEFERRED)
        ).all()
        morning = (night + timedelta(days=1)).replace(hour=8, minute=0)
        assert [d.send_after for d in deferred] == [morning]
    assert len(dev_outbox(member.phone)) == 1  # only the verification, before the night

    clock.advance(timedelta(hours=8, minutes=29))  # 07:59: still quiet
    tasks.run_due()
    assert len(dev_outbox(member.phone)) == 1
    clock.advance(timedelta(minutes=2))
    tasks.run_due()
    assert deliveries(member.user_id)[-3:] == [
        ("sms", "sent", ""),
        ("wechat", "skipped", "no_wechat"),
        ("wechat_oa", "skipped", "no_wechat"),
    ]
    assert len(dev_outbox(member.phone)) == 2


def test_a_subscribe_message_without_an_acceptance_is_skipped_at_once_not_queued(
    tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x, wechat=True)
    tasks.run_due()  # the verification's own notification
    _notify(tree.grassroots_a1x, member.user_id)
    assert deliveries(member.user_id)[-4:] == [
        ("inbox", "sent", ""),
        ("sms", "queued", ""),
        ("wechat", "skipped", "no_subscription"),
        ("wechat_oa", "skipped", "no_wechat"),
    ]
    with unit_of_work(read_only=True) as session:
        queued = session.scalars(
            select(Task.args).where(Task.name == channels.DELIVER, Task.status == "queued")
        ).all()
        sms = session.scalar(
            select(Delivery.id).where(Delivery.channel == "sms").order_by(Delivery.id.desc())
        )
    assert queued == [{"delivery_id": sms}]  # the SMS alone waits for the worker


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
    assert [d for d in deliveries(member.user_id) if d[0] == "wechat"][-1] == (
        "wechat",
        "failed",
        "wechat.not_subscribed",
    )
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


def test_the_provider_is_called_outside_any_transaction_and_an_unanswered_call_is_retried(
    tree: Tree, make_member: MemberFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim (the daily count, the row marked sending) is committed before the SMS
    gateway is called, so no write lock is held across the call; an unanswered call gives
    the count back and queues the delivery again; the retry sends it."""
    move_clock_to_local(10)  # the retry, ten minutes on, is on the same local day
    member = make_member(tree.grassroots_a1x)
    seen: list[tuple[str, int]] = []
    answers = [UpstreamError(IntegrationsError.SMS_UNAVAILABLE, "timed out"), None]

    def gateway(self: object, message: NoticeMessage) -> None:
        # Another connection sees what the claim committed, and may write meanwhile.
        with unit_of_work() as session:
            (status,) = session.execute(
                select(Delivery.status).where(
                    Delivery.channel == "sms", Delivery.status == DeliveryStatus.SENDING
                )
            ).one()
            counted = session.scalar(
                select(DailyCount.count).where(DailyCount.user_id == member.user_id)
            )
            session.execute(update(DailyCount).values(count=DailyCount.count))  # a write
        seen.append((str(status), int(counted or 0)))
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    monkeypatch.setattr(DevSmsSink, "send_notice", gateway)
    before = _sms_count(member.user_id)
    _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()
    assert seen == [("sending", before + 1)]
    sms = [(s, r) for c, s, r in deliveries(member.user_id) if c == "sms"]
    assert sms[-1] == ("queued", "sms.unavailable")
    assert _sms_count(member.user_id) == before  # given back

    clock.advance(timedelta(minutes=10))  # past the retry's backoff
    tasks.run_due()
    assert seen[-1] == ("sending", before + 1)
    assert [s for c, s, _ in deliveries(member.user_id) if c == "sms"][-1] == "sent"
    assert _sms_count(member.user_id) == before + 1


def test_a_run_that_died_while_sending_is_failed_by_its_retry_and_not_sent_twice(
    tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x)
    _notify(tree.grassroots_a1x, member.user_id)
    with unit_of_work() as session:
        sms = session.scalars(
            select(Delivery).where(Delivery.channel == "sms").order_by(Delivery.id.desc())
        ).first()
        assert sms is not None
        sms.status = DeliveryStatus.SENDING  # as a worker killed after its claim leaves it
        delivery_id = sms.id
    sent_before = len(dev_outbox(member.phone))
    tasks.run_due()  # the delivery's task, run again
    with unit_of_work(read_only=True) as session:
        row = session.get_one(Delivery, delivery_id)
        assert (row.status, row.reason) == (DeliveryStatus.FAILED, "interrupted")
    assert len(dev_outbox(member.phone)) == sent_before


def test_many_notifications_are_delivered_in_groups(
    tree: Tree, make_member: MemberFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thirty members told at once: their SMS go in one run of the delivery task (one
    claim, one outcome transaction), every one sent, each counted once."""
    members = [make_member(tree.grassroots_a1x) for _ in range(30)]
    tasks.run_due()  # their verifications' notifications
    runs: list[int] = []
    deliver = channels.deliver

    def counted(batch: list[dict[str, object]]) -> object:
        runs.append(len(batch))
        return deliver(batch)

    kind = tasks.queue.kinds()[channels.DELIVER]
    monkeypatch.setitem(tasks.queue._kinds, kind.name, dataclasses.replace(kind, run=counted))
    with unit_of_work() as session:
        service.notify_many(
            session,
            [
                service.Notice(tree.grassroots_a1x, m.user_id, Event.PRIZE_WON, {"prize": "伞"})
                for m in members
            ],
        )
    before = {m.user_id: _sms_count(m.user_id) for m in members}
    assert tasks.run_due() == 30
    assert runs == [30]
    for m in members:
        assert [s for c, s, _ in deliveries(m.user_id) if c == "sms"][-1] == "sent"
        assert _sms_count(m.user_id) == before[m.user_id] + 1
        assert "获得伞" in dev_outbox(m.phone)[-1]["text"]


def _sms_count(user_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        return int(
            session.scalar(select(DailyCount.count).where(DailyCount.user_id == user_id)) or 0
        )


def test_a_follower_of_the_official_account_gets_a_template_message_once(
    tree: Tree, make_member: MemberFactory
) -> None:
    """A member who signed in through the official account is told by a template message
    (no acceptance needed: following is enough), linked to the mini program's page; a
    member who unfollowed is a failed delivery with WeChat's reason."""
    follower = make_member(tree.grassroots_a1x, official_account=True)
    gone = make_member(tree.grassroots_a1x, official_account=True)
    wechat_simulator.reset()
    wechat_simulator.unfollow(official_account().appid, gone.oa_openid)
    counted = _sms_count(gone.user_id)  # its verification's SMS and template message
    _notify(tree.grassroots_a1x, follower.user_id)
    _notify(tree.grassroots_a1x, gone.user_id)
    tasks.run_due()
    (sent,) = wechat_simulator.template_messages(follower.oa_openid)
    assert sent["appid"] == official_account().appid
    assert sent["template_id"] == "platform-oa-prize_won"
    assert sent["data"] == {
        "thing1": "中奖通知",
        "thing2": "恭喜您在「十二月抽奖」中获得电饭煲，请在",
    }
    assert sent["client_msg_id"].startswith("delivery-")
    assert [d for d in deliveries(follower.user_id) if d[0] == "wechat_oa"][-1] == (
        "wechat_oa",
        "sent",
        "",
    )
    assert wechat_simulator.template_messages(gone.oa_openid) == []
    assert [d for d in deliveries(gone.user_id) if d[0] == "wechat_oa"][-1] == (
        "wechat_oa",
        "failed",
        "wechat.not_following",
    )
    # The prize's SMS only: the refused template message gave its count back.
    assert _sms_count(gone.user_id) == counted + 1


def test_housekeeping_deletes_notifications_past_their_keeping_time(
    tree: Tree, make_member: MemberFactory
) -> None:
    from gonghui import housekeeping
    from gonghui.notifications.models import Notification
    from gonghui.settings import get_settings

    member = make_member(tree.grassroots_a1x)
    old = _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()
    clock.advance(timedelta(days=get_settings().notifications_keep_days - 1))
    recent = _notify(tree.grassroots_a1x, member.user_id)
    tasks.run_due()
    clock.advance(timedelta(days=2))
    assert housekeeping.run()["notifications"] >= 1
    with unit_of_work(read_only=True) as session:
        kept = session.scalars(
            select(Notification.id).where(Notification.user_id == member.user_id)
        ).all()
        assert old not in kept
        assert recent in kept
        assert session.scalars(select(Delivery).where(Delivery.notification_id == old)).all() == []
        days = session.scalars(select(DailyCount.day).where(DailyCount.user_id == member.user_id))
        assert all(d >= clock.local_day() - timedelta(days=7) for d in days)
    assert housekeeping.run()["notifications"] == 0

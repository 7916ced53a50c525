"""Delivering notifications on their channels, on the task queue (in groups): quiet hours
defer one (unless urgent), the member's daily cap skips it, then SMS through the
configured SMS adapter, or a WeChat subscribe message when the member accepted its
template once (the acceptance is consumed by the send). Each outcome is written on the
delivery row; no transaction is open while a provider is called."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from gonghui import clock, tasks
from gonghui.accounts.models import Identity, Provider, User
from gonghui.db import rowcount, unit_of_work, upsert_insert
from gonghui.errors import Conflict, UpstreamError
from gonghui.integrations.errors import IntegrationsError
from gonghui.integrations.sms import NoticeMessage, get_sms_sender
from gonghui.integrations.wechat import WeChatApp, WeChatClient, mini_program, official_account
from gonghui.members.models import Membership, RosterEntry
from gonghui.notifications import templates
from gonghui.notifications.errors import NotificationsError
from gonghui.notifications.models import (
    Channel,
    DailyCount,
    Delivery,
    DeliveryStatus,
    Event,
    Notification,
    Subscription,
)
from gonghui.notifications.rules import Rules
from gonghui.notifications.rules import of_org as rules_of
from gonghui.pii import PiiField, unseal

log = logging.getLogger("gonghui.notifications")

DELIVER = "notifications.deliver"
# WeChat's subscribe-message values ("thing" kind) hold at most 20 characters.
WECHAT_VALUE_CHARS = 20
# Failures worth another try: the provider did not answer.
_RETRYABLE = frozenset({IntegrationsError.SMS_UNAVAILABLE, IntegrationsError.WECHAT_UNAVAILABLE})


def quiet_until(rule: Rules, at: datetime) -> datetime | None:
    """When the quiet hours that ``at`` falls in end (None: ``at`` is not in them)."""
    start, end = rule.quiet_start_minute, rule.quiet_end_minute
    if start is None or end is None or start == end:
        return None
    local = at.astimezone(clock.display_zone())
    minute = local.hour * 60 + local.minute
    quiet = start <= minute < end if start < end else (minute >= start or minute < end)
    if not quiet:
        return None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    until = midnight + timedelta(minutes=end)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(at.tzinfo)


def _count_one(session: Session, *, user_id: int, cap: int) -> bool:
    """Count one message against the user's cap for today; False (nothing counted) when
    the cap is reached. One conditional UPDATE: two workers cannot both take the last."""
    day = clock.local_day()
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(
        insert(DailyCount)
        .values(user_id=user_id, day=day, count=0)
        .on_conflict_do_nothing(index_elements=["user_id", "day"])
    )
    moved = session.execute(
        update(DailyCount)
        .where(DailyCount.user_id == user_id, DailyCount.day == day, DailyCount.count < cap)
        .values(count=DailyCount.count + 1)
        .execution_options(synchronize_session=False)
    )
    return rowcount(moved) == 1


def _uncount(session: Session, *, user_id: int) -> None:
    session.execute(
        update(DailyCount)
        .where(
            DailyCount.user_id == user_id,
            DailyCount.day == clock.local_day(),
            DailyCount.count > 0,
        )
        .values(count=DailyCount.count - 1)
        .execution_options(synchronize_session=False)
    )


def phone_of(session: Session, user_id: int) -> str | None:
    """The number the user signed in with, else their roster entry's."""
    blob = session.scalar(select(User.phone_enc).where(User.id == user_id))
    if blob is None:
        blob = session.scalar(
            select(RosterEntry.phone_enc)
            .join(Membership, Membership.roster_entry_id == RosterEntry.id)
            .where(Membership.user_id == user_id)
        )
    return unseal(PiiField.PHONE, blob) if blob is not None else None


def _wechat_app(channel: Channel) -> tuple[Provider, WeChatApp]:
    if channel == Channel.WECHAT_OA:
        return Provider.WECHAT_OFFICIAL, official_account()
    return Provider.WECHAT_MINI, mini_program()


def openid_of(session: Session, user_id: int, channel: Channel = Channel.WECHAT) -> str | None:
    """The user's openid at the platform's mini program (``WECHAT``) or official account
    (``WECHAT_OA``)."""
    provider, app = _wechat_app(channel)
    return session.scalar(
        select(Identity.subject).where(
            Identity.user_id == user_id,
            Identity.provider == provider,
            Identity.app_id == app.appid,
        )
    )


@dataclass(frozen=True)
class Reach:
    """Which of a batch's users each channel can reach, read in a few queries for the
    batch (:func:`reach`)."""

    phones: frozenset[int]
    wechat: frozenset[int]
    official: frozenset[int]
    # (user, template id) pairs with an unused subscribe-message acceptance.
    accepted: frozenset[tuple[int, str]]

    def why_not(self, channel: Channel, user_id: int, template_id: str = "") -> str:
        """Why ``channel`` cannot reach the user ("" when it can): no number, no WeChat
        identity at the app, or (subscribe messages) no acceptance of the template."""
        if channel == Channel.SMS:
            return "" if user_id in self.phones else "no_phone"
        if channel == Channel.WECHAT_OA:
            return "" if user_id in self.official else "no_wechat"
        if user_id not in self.wechat:
            return "no_wechat"
        return "" if (user_id, template_id) in self.accepted else "no_subscription"


def reach(session: Session, user_ids: Collection[int]) -> Reach:
    """Who of ``user_ids`` has a phone (their own or their roster entry's), an openid at the
    platform's mini program and official account, and which acceptances."""
    ids = sorted(set(user_ids))
    if not ids:
        return Reach(frozenset(), frozenset(), frozenset(), frozenset())
    phones = set(
        session.scalars(select(User.id).where(User.id.in_(ids), User.phone_enc.is_not(None)))
    )
    phones.update(
        session.scalars(
            select(Membership.user_id)
            .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
            .where(Membership.user_id.in_(ids), RosterEntry.phone_enc.is_not(None))
        )
    )
    openids: dict[Provider, set[int]] = {
        Provider.WECHAT_MINI: set(),
        Provider.WECHAT_OFFICIAL: set(),
    }
    apps = [_wechat_app(Channel.WECHAT), _wechat_app(Channel.WECHAT_OA)]
    for user_id, provider in session.execute(
        select(Identity.user_id, Identity.provider).where(
            Identity.user_id.in_(ids),
            or_(*(and_(Identity.provider == p, Identity.app_id == a.appid) for p, a in apps)),
        )
    ):
        openids[Provider(provider)].add(int(user_id))
    accepted = session.execute(
        select(Subscription.user_id, Subscription.template_id)
        .where(Subscription.user_id.in_(ids), Subscription.consumed_at.is_(None))
        .distinct()
    )
    return Reach(
        frozenset(int(u) for u in phones),
        frozenset(openids[Provider.WECHAT_MINI]),
        frozenset(openids[Provider.WECHAT_OFFICIAL]),
        frozenset((int(u), str(t)) for u, t in accepted),
    )


# Unused acceptances one user may hold (WeChat keeps its own count; ours only bounds rows).
MAX_UNUSED_SUBSCRIPTIONS = 50


def accept_subscriptions(session: Session, *, user_id: int, template_ids: list[str]) -> int:
    """The user accepted each of ``template_ids`` once: one send each."""
    unused = session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.user_id == user_id, Subscription.consumed_at.is_(None))
    )
    if int(unused or 0) + len(template_ids) > MAX_UNUSED_SUBSCRIPTIONS:
        raise Conflict(NotificationsError.TOO_MANY_SUBSCRIPTIONS, "too many unused subscriptions")
    session.add_all(Subscription(user_id=user_id, template_id=t) for t in template_ids)
    session.flush()
    return len(template_ids)


def subscriptions_left(session: Session, *, user_id: int, template_id: str) -> int:
    return len(
        session.scalars(
            select(Subscription.id).where(
                Subscription.user_id == user_id,
                Subscription.template_id == template_id,
                Subscription.consumed_at.is_(None),
            )
        ).all()
    )


def _consume(session: Session, *, user_id: int, template_id: str, delivery_id: int) -> int | None:
    """Take the user's oldest unused acceptance of ``template_id``; its id, or None."""
    for sub_id in session.scalars(
        select(Subscription.id)
        .where(
            Subscription.user_id == user_id,
            Subscription.template_id == template_id,
            Subscription.consumed_at.is_(None),
        )
        .order_by(Subscription.id)
        .limit(3)
    ):
        taken = session.execute(
            update(Subscription)
            .where(and_(Subscription.id == sub_id, Subscription.consumed_at.is_(None)))
            .values(consumed_at=clock.now(), delivery_id=delivery_id)
            .execution_options(synchronize_session=False)
        )
        if rowcount(taken) == 1:
            return int(sub_id)
    return None


def _give_back(session: Session, sub_id: int) -> None:
    session.execute(
        update(Subscription)
        .where(Subscription.id == sub_id)
        .values(consumed_at=None, delivery_id=None)
        .execution_options(synchronize_session=False)
    )


def _finish(delivery: Delivery, status: DeliveryStatus, reason: str = "") -> None:
    delivery.status = status
    delivery.reason = reason[:200]
    delivery.updated_at = clock.now()


_OPEN = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING)


def _dead(args: dict[str, object], error: str) -> None:
    with unit_of_work() as session:
        delivery = session.get(Delivery, args.get("delivery_id"))
        if delivery is not None and delivery.status in _OPEN:
            _finish(delivery, DeliveryStatus.FAILED, error)


@dataclass(frozen=True)
class Outbound:
    """A message claimed for sending: where to, what, and what to give back if the
    provider refuses it (the daily count always; a WeChat acceptance unless WeChat says
    the member has none)."""

    delivery_id: int
    channel: Channel
    user_id: int
    to: str  # a phone number, or an openid
    title: str
    body: str
    variables: dict[str, str]
    template_id: str = ""
    page: str = ""
    subscription_id: int | None = None


@tasks.grouped(DELIVER, max_attempts=5, on_dead=_dead)
def deliver(batch: list[dict[str, Any]]) -> None:
    """Deliver a group of deliveries in three steps, so that no transaction is open while
    a provider is called (on SQLite that would hold the single writer across network
    calls): claim each message (the daily count, the WeChat acceptance) and mark it
    ``sending``; send them; record the outcomes with the run's completion. A run that
    died between the first step and the last leaves ``sending`` behind: its retry fails
    those deliveries as ``interrupted`` rather than risk sending one twice."""
    ids = sorted({int(one["delivery_id"]) for one in batch})
    with unit_of_work() as session:
        claimed = [
            outbound
            for delivery in session.scalars(
                select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id).with_for_update()
            )
            if (outbound := _claim_open(session, delivery)) is not None
        ]
        if not claimed:
            tasks.complete(session)
    if not claimed:
        return
    failures: dict[int, UpstreamError] = {}
    for outbound in claimed:
        try:
            send(outbound)
        except UpstreamError as exc:
            failures[outbound.delivery_id] = exc
    with unit_of_work() as session:
        again: list[Delivery] = []
        for outbound in claimed:
            delivery = session.get_one(Delivery, outbound.delivery_id)
            failure = failures.get(outbound.delivery_id)
            if failure is None:
                _finish(delivery, DeliveryStatus.SENT)
            elif _refused(session, delivery, outbound, failure):
                again.append(delivery)
        if again:
            # The unanswered go again, each on its own count (Delivery.attempts).
            delay = tasks.backoff_s(min(d.attempts for d in again))
            for delivery in again:
                delivery.send_after = clock.now() + timedelta(seconds=delay)
            tasks.defer_many(
                session, DELIVER, [{"delivery_id": d.id} for d in again], delay_s=delay
            )
        tasks.complete(session)


def _claim_open(session: Session, delivery: Delivery) -> Outbound | None:
    if delivery.status == DeliveryStatus.SENDING:
        _finish(delivery, DeliveryStatus.FAILED, "interrupted")
        return None
    if delivery.status not in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED):
        return None  # done by an earlier run
    notification = session.get_one(Notification, delivery.notification_id)
    return claim(session, delivery=delivery, notification=notification)


def claim(session: Session, *, delivery: Delivery, notification: Notification) -> Outbound | None:
    """Decide the delivery in ``session``: deferred to the end of quiet hours, skipped (and
    why), or claimed for sending (counted against the daily cap, a WeChat acceptance
    consumed, the row marked ``sending``): then what to send."""
    at = clock.now()
    rule = rules_of(session, notification.org_id)
    delivery.attempts += 1
    if not notification.urgent:
        until = quiet_until(rule, at)
        if until is not None:
            _finish(delivery, DeliveryStatus.DEFERRED, "quiet_hours")
            delivery.send_after = until
            tasks.defer(
                session, DELIVER, delay_s=(until - at).total_seconds(), delivery_id=delivery.id
            )
            return None
    event, channel = Event(notification.event), Channel(delivery.channel)
    text = templates.of_org(session, notification.org_id).get((event, channel))
    if text is None:
        _finish(delivery, DeliveryStatus.SKIPPED, "no_template")
        return None
    user_id = notification.user_id
    if channel == Channel.SMS:
        to = phone_of(session, user_id)
    else:
        to = openid_of(session, user_id, channel)
    if to is None:
        reason = "no_phone" if channel == Channel.SMS else "no_wechat"
        _finish(delivery, DeliveryStatus.SKIPPED, reason)
        return None
    if channel == Channel.WECHAT and not subscriptions_left(
        session, user_id=user_id, template_id=text.wechat_template_id
    ):
        _finish(delivery, DeliveryStatus.SKIPPED, "no_subscription")
        return None
    if not _count_one(session, user_id=user_id, cap=rule.daily_cap):
        _finish(delivery, DeliveryStatus.SKIPPED, "daily_cap")
        return None
    subscription_id = None
    if channel == Channel.WECHAT:
        subscription_id = _consume(
            session, user_id=user_id, template_id=text.wechat_template_id, delivery_id=delivery.id
        )
        if subscription_id is None:
            _uncount(session, user_id=user_id)
            _finish(delivery, DeliveryStatus.SKIPPED, "no_subscription")
            return None
    _finish(delivery, DeliveryStatus.SENDING)
    return Outbound(
        delivery_id=delivery.id,
        channel=channel,
        user_id=user_id,
        to=to,
        title=templates.render(text.title, notification.variables),
        body=templates.render(text.body, notification.variables),
        variables=dict(notification.variables),
        template_id=text.wechat_template_id,
        page=text.wechat_page,
        subscription_id=subscription_id,
    )


def send(outbound: Outbound) -> None:
    """The provider's call, outside any transaction; an ``UpstreamError`` when it refuses
    or does not answer."""
    data = {
        "thing1": outbound.title[:WECHAT_VALUE_CHARS],
        "thing2": outbound.body[:WECHAT_VALUE_CHARS],
    }
    if outbound.channel == Channel.SMS:
        get_sms_sender().send_notice(
            NoticeMessage(phone=outbound.to, params=outbound.variables, text=outbound.body)
        )
        return
    if outbound.channel == Channel.WECHAT_OA:
        WeChatClient().send_template_message(
            official_account(),
            touser=outbound.to,
            template_id=outbound.template_id,
            data=data,
            client_msg_id=f"delivery-{outbound.delivery_id}",
            miniprogram=(mini_program().appid, outbound.page) if outbound.page else None,
        )
        return
    WeChatClient().send_subscribe_message(
        mini_program(),
        touser=outbound.to,
        template_id=outbound.template_id,
        page=outbound.page,
        data=data,
    )


# Tries of one delivery whose provider did not answer, before it fails.
MAX_DELIVERY_ATTEMPTS = 5


def _refused(session: Session, delivery: Delivery, outbound: Outbound, exc: UpstreamError) -> bool:
    """Give back what the claim took and record the refusal; True when the call went
    unanswered and the delivery has tries left (it is queued again)."""
    _uncount(session, user_id=outbound.user_id)
    if outbound.subscription_id is not None and exc.code != IntegrationsError.WECHAT_NOT_SUBSCRIBED:
        _give_back(session, outbound.subscription_id)
    retry = exc.code in _RETRYABLE and delivery.attempts < MAX_DELIVERY_ATTEMPTS
    _finish(delivery, DeliveryStatus.QUEUED if retry else DeliveryStatus.FAILED, str(exc.code))
    return retry

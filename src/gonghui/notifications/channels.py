"""Delivering one notification on one channel, on the task queue: quiet hours defer it
(unless urgent), the member's daily cap skips it, then SMS through the configured SMS
adapter, or a WeChat subscribe message when the member accepted its template once (the
acceptance is consumed by the send). Each outcome is written on the delivery row."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from gonghui import clock, tasks
from gonghui.accounts.models import Identity, Provider, User
from gonghui.db import rowcount, unit_of_work, upsert_insert
from gonghui.errors import Conflict, UpstreamError
from gonghui.integrations.errors import IntegrationsError
from gonghui.integrations.sms import NoticeMessage, get_sms_sender
from gonghui.integrations.wechat import WeChatClient, mini_program
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
from gonghui.notifications.rules import Rules, rules
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


def openid_of(session: Session, user_id: int) -> str | None:
    """The user's openid at the platform's mini program."""
    return session.scalar(
        select(Identity.subject).where(
            Identity.user_id == user_id,
            Identity.provider == Provider.WECHAT_MINI,
            Identity.app_id == mini_program().appid,
        )
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


def _dead(args: dict[str, object], error: str) -> None:
    with unit_of_work() as session:
        delivery = session.get(Delivery, args.get("delivery_id"))
        if delivery is not None and delivery.status in (
            DeliveryStatus.QUEUED,
            DeliveryStatus.DEFERRED,
        ):
            _finish(delivery, DeliveryStatus.FAILED, error)


@tasks.task(DELIVER, max_attempts=5, on_dead=_dead)
def deliver(delivery_id: int) -> None:
    with unit_of_work() as session:
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.status not in (
            DeliveryStatus.QUEUED,
            DeliveryStatus.DEFERRED,
        ):
            return  # done by an earlier run
        notification = session.get_one(Notification, delivery.notification_id)
        deliver_one(session, delivery=delivery, notification=notification)


def deliver_one(session: Session, *, delivery: Delivery, notification: Notification) -> None:
    at = clock.now()
    rule = rules(session, notification.org_id)
    delivery.attempts += 1
    if not notification.urgent:
        until = quiet_until(rule, at)
        if until is not None:
            _finish(delivery, DeliveryStatus.DEFERRED, "quiet_hours")
            delivery.send_after = until
            tasks.defer(
                session, DELIVER, delay_s=(until - at).total_seconds(), delivery_id=delivery.id
            )
            return
    event, channel = Event(notification.event), Channel(delivery.channel)
    text = templates.effective(session, notification.org_id).get((event, channel))
    if text is None:
        _finish(delivery, DeliveryStatus.SKIPPED, "no_template")
        return
    title = templates.render(text.title, notification.variables)
    body = templates.render(text.body, notification.variables)
    user_id = notification.user_id
    if channel == Channel.SMS:
        phone = phone_of(session, user_id)
        if phone is None:
            _finish(delivery, DeliveryStatus.SKIPPED, "no_phone")
            return
        if not _count_one(session, user_id=user_id, cap=rule.daily_cap):
            _finish(delivery, DeliveryStatus.SKIPPED, "daily_cap")
            return
        try:
            get_sms_sender().send_notice(
                NoticeMessage(phone=phone, params=dict(notification.variables), text=body)
            )
        except UpstreamError as exc:
            _uncount(session, user_id=user_id)
            _failed(delivery, exc)
            return
        _finish(delivery, DeliveryStatus.SENT)
        return
    openid = openid_of(session, user_id)
    if openid is None:
        _finish(delivery, DeliveryStatus.SKIPPED, "no_wechat")
        return
    if not subscriptions_left(session, user_id=user_id, template_id=text.wechat_template_id):
        _finish(delivery, DeliveryStatus.SKIPPED, "no_subscription")
        return
    if not _count_one(session, user_id=user_id, cap=rule.daily_cap):
        _finish(delivery, DeliveryStatus.SKIPPED, "daily_cap")
        return
    sub_id = _consume(
        session, user_id=user_id, template_id=text.wechat_template_id, delivery_id=delivery.id
    )
    if sub_id is None:
        _uncount(session, user_id=user_id)
        _finish(delivery, DeliveryStatus.SKIPPED, "no_subscription")
        return
    try:
        WeChatClient().send_subscribe_message(
            mini_program(),
            touser=openid,
            template_id=text.wechat_template_id,
            page=text.wechat_page,
            data={
                "thing1": title[:WECHAT_VALUE_CHARS],
                "thing2": body[:WECHAT_VALUE_CHARS],
            },
        )
    except UpstreamError as exc:
        _uncount(session, user_id=user_id)
        if exc.code != IntegrationsError.WECHAT_NOT_SUBSCRIBED:
            _give_back(session, sub_id)
        _failed(delivery, exc)
        return
    _finish(delivery, DeliveryStatus.SENT)


def _failed(delivery: Delivery, exc: UpstreamError) -> None:
    """A refusal fails the delivery; an unanswered call is tried again (the transaction,
    with what it counted, rolls back) while attempts remain."""
    run = tasks.current()
    if exc.code in _RETRYABLE and run is not None and run.attempt < run.max_attempts:
        raise tasks.Retry(str(exc.code))
    _finish(delivery, DeliveryStatus.FAILED, str(exc.code))

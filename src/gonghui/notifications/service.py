"""Notifying a user: the inbox row written at once, each outbound channel's delivery
queued on the task queue (:mod:`gonghui.notifications.channels` sends it); the member's
inbox; templates and delivery settings per org; the delivery log staff read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.audit import service as audit
from gonghui.clock import local_day, now
from gonghui.db import rowcount
from gonghui.errors import InvalidInput, NotFound
from gonghui.notifications import templates
from gonghui.notifications.channels import DELIVER, reach
from gonghui.notifications.errors import NotificationsError
from gonghui.notifications.models import (
    Channel,
    DailyCount,
    Delivery,
    DeliveryStatus,
    Event,
    Notification,
    OrgSettings,
    Subscription,
    Template,
)
from gonghui.notifications.rules import Rules, rules
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, get_scoped, subtree_condition

OUTBOUND = (Channel.SMS, Channel.WECHAT, Channel.WECHAT_OA)

__all__ = ["DELIVER", "OUTBOUND", "Notice", "Rules", "notify", "notify_many", "rules"]
MAX_VARIABLE_CHARS = 500


@dataclass(frozen=True)
class Notice:
    """What to tell one user: ``event`` in ``org_id``'s words with ``variables``, on the
    inbox and each of ``channels`` (default: every channel whose template is enabled)."""

    org_id: int
    user_id: int
    event: Event
    variables: dict[str, Any]
    urgent: bool = False
    broadcast_id: int | None = None
    channels: tuple[Channel, ...] | None = None


def notify(session: Session, notice: Notice) -> int:
    """Tell one user (:func:`notify_many`); the notification's id."""
    return notify_many(session, [notice])[0]


def notify_many(session: Session, notices: Sequence[Notice]) -> list[int]:
    """Tell each notice's user, in the caller's transaction: the inbox rows now, each
    outbound channel's delivery queued for the worker (one task each, run in groups), or
    skipped at once with the reason when the channel cannot reach the user (no number, no
    WeChat identity, no acceptance of the subscribe message's template). Returns the
    notifications' ids, in the notices' order.

    A group of events writes a hundred notifications and four hundred deliveries at a
    time, so the rows go in as two multi-row INSERTs rather than through the ORM's unit
    of work; everything is read before the first (on SQLite a write holds the one writer)."""
    if not notices:
        return []
    rows = [_notification(session, notice) for notice in notices]
    reachable = reach(session, [notice.user_id for notice in notices])
    at = now()
    ids = session.scalars(
        insert(Notification).returning(Notification.id, sort_by_parameter_order=True),
        [{**row, "created_at": at} for row in rows],
    ).all()
    deliveries: list[dict[str, Any]] = []
    for notice, notification_id in zip(notices, ids, strict=True):
        texts = templates.of_org(session, notice.org_id)
        wanted = set(notice.channels) if notice.channels is not None else None
        deliveries.append(_delivery(notification_id, Channel.INBOX, DeliveryStatus.SENT, "", at))
        for channel in OUTBOUND:
            text = texts.get((notice.event, channel))
            chosen = channel in wanted if wanted is not None else bool(text and text.enabled)
            if text is None or not chosen:
                continue
            reason = reachable.why_not(channel, notice.user_id, text.wechat_template_id)
            status = DeliveryStatus.SKIPPED if reason else DeliveryStatus.QUEUED
            deliveries.append(_delivery(notification_id, channel, status, reason, at))
    written = session.execute(
        insert(Delivery).returning(Delivery.id, Delivery.status, sort_by_parameter_order=True),
        deliveries,
    ).all()
    queued = [{"delivery_id": d_id} for d_id, status in written if status == DeliveryStatus.QUEUED]
    if queued:
        tasks.defer_many(session, DELIVER, queued)
    return [int(i) for i in ids]


def _notification(session: Session, notice: Notice) -> dict[str, Any]:
    values = {
        key: str(notice.variables.get(key, ""))[:MAX_VARIABLE_CHARS]
        for key in templates.VARIABLES[notice.event]
    }
    inbox = templates.of_org(session, notice.org_id)[(notice.event, Channel.INBOX)]
    return {
        "org_id": notice.org_id,
        "user_id": notice.user_id,
        "event": notice.event,
        "title": templates.render(inbox.title, values)[:100],
        "body": templates.render(inbox.body, values)[:500],
        "variables": values,
        "urgent": notice.urgent or notice.event in templates.URGENT,
        "broadcast_id": notice.broadcast_id,
    }


def _delivery(
    notification_id: int, channel: Channel, status: DeliveryStatus, reason: str, at: datetime
) -> dict[str, Any]:
    return {
        "notification_id": notification_id,
        "channel": channel,
        "status": status,
        "reason": reason,
        "attempts": 0,
        "created_at": at,
        "updated_at": at,
    }


# -- the member's inbox ---------------------------------------------------------------------


def inbox(
    session: Session, *, user_id: int, limit: int = 20, before_id: int | None = None
) -> list[Notification]:
    """The user's notifications, newest first."""
    query = select(Notification).where(Notification.user_id == user_id)
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    return list(session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def unread_count(session: Session, *, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def own_notification(session: Session, *, user_id: int, notification_id: int) -> Notification:
    """The user's own notification; another's is not found, as one that does not exist."""
    found = session.scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )
    if found is None:
        raise NotFound(NotificationsError.NOT_FOUND, "no such notification")
    return found


def mark_read(session: Session, *, user_id: int, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications read (``None``: all); how many changed."""
    stmt = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        own_notification(session, user_id=user_id, notification_id=notification_id)
        stmt = stmt.where(Notification.id == notification_id)
    result = session.execute(
        stmt.values(read_at=now()).execution_options(synchronize_session=False)
    )
    return rowcount(result)


def deliveries_of(session: Session, notification_ids: Sequence[int]) -> dict[int, list[Delivery]]:
    found: dict[int, list[Delivery]] = {i: [] for i in notification_ids}
    if notification_ids:
        for d in session.scalars(
            select(Delivery)
            .where(Delivery.notification_id.in_(notification_ids))
            .order_by(Delivery.id)
        ):
            found[d.notification_id].append(d)
    return found


# -- housekeeping ---------------------------------------------------------------------------

# Rows one pass removes at most (a short write transaction; the next pass takes the rest).
PURGE_BATCH = 5000


def _oldest_ids(session: Session, model: Any, stamp: Any, before: Any) -> list[int]:
    """The ids of the oldest rows (by id, which follows time) whose ``stamp`` is before
    ``before``: at most a batch, read through the primary key only."""
    rows = session.execute(select(model.id, stamp).order_by(model.id).limit(PURGE_BATCH)).all()
    ids = []
    for row_id, at in rows:
        if at >= before:
            break
        ids.append(int(row_id))
    return ids


def purge(session: Session, *, keep_days: int) -> int:
    """Delete notifications older than ``keep_days`` with their deliveries, and the daily
    counters of past weeks; how many notifications went."""
    cutoff = now() - timedelta(days=keep_days)
    ids = _oldest_ids(session, Notification, Notification.created_at, cutoff)
    if ids:
        deliveries = select(Delivery.id).where(Delivery.notification_id.in_(ids))
        session.execute(
            update(Subscription)
            .where(Subscription.delivery_id.in_(deliveries))
            .values(delivery_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(Delivery)
            .where(Delivery.notification_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(Notification)
            .where(Notification.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    week_ago = local_day() - timedelta(days=7)
    counters = _oldest_ids(session, DailyCount, DailyCount.day, week_ago)
    if counters:
        session.execute(
            delete(DailyCount)
            .where(DailyCount.id.in_(counters))
            .execution_options(synchronize_session=False)
        )
    return len(ids)


# -- staff: templates, rules, the delivery log ------------------------------------------------


def _org(session: Session, actor: Actor, org_id: int, permission: Permission) -> Org:
    return get_scoped(session, Org, org_id, actor, permission)


def org_templates(session: Session, *, actor: Actor, org_id: int) -> list[templates.Text]:
    _org(session, actor, org_id, Permission.MEMBERS_READ)
    texts = templates.effective(session, org_id)
    return [texts[(e, c)] for e in Event for c in Channel]


def save_template(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    event: Event,
    channel: Channel,
    enabled: bool,
    title: str,
    body: str,
    wechat_template_id: str = "",
    wechat_page: str = "",
) -> Template:
    """The org's own template for ``event`` on ``channel`` (its subtree inherits it)."""
    org = _org(session, actor, org_id, Permission.MEMBERS_MANAGE)
    title, body = title.strip(), body.strip()
    if not title or not body:
        raise InvalidInput(NotificationsError.BAD_TEMPLATE, "a template needs a title and a body")
    templates.check(event, title, body)
    row = session.scalar(
        select(Template).where(
            Template.org_id == org.id, Template.event == event, Template.channel == channel
        )
    )
    if row is None:
        row = Template(org_id=org.id, event=event, channel=channel)
        session.add(row)
    row.enabled = enabled or channel == Channel.INBOX
    row.title, row.body = title, body
    row.wechat_template_id = wechat_template_id.strip()
    row.wechat_page = wechat_page.strip()
    row.updated_by = actor.user_id
    row.updated_at = now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="notifications.template_save",
        org_id=org.id,
        subject_type="notification_template",
        subject_id=row.id,
        details={"event": str(event), "channel": str(channel), "enabled": row.enabled},
    )
    return row


def save_rules(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    quiet_start_minute: int | None,
    quiet_end_minute: int | None,
    daily_cap: int,
) -> OrgSettings:
    org = _org(session, actor, org_id, Permission.MEMBERS_MANAGE)
    if (quiet_start_minute is None) != (quiet_end_minute is None):
        raise InvalidInput(NotificationsError.BAD_SETTINGS, "quiet hours need a start and an end")
    for minute in (quiet_start_minute, quiet_end_minute):
        if minute is not None and not 0 <= minute < 24 * 60:
            raise InvalidInput(NotificationsError.BAD_SETTINGS, "a minute of the day: 0 to 1439")
    if not 0 <= daily_cap <= 100:
        raise InvalidInput(NotificationsError.BAD_SETTINGS, "the daily cap: 0 to 100")
    row = session.scalar(select(OrgSettings).where(OrgSettings.org_id == org.id))
    if row is None:
        row = OrgSettings(org_id=org.id)
        session.add(row)
    row.quiet_start_minute, row.quiet_end_minute = quiet_start_minute, quiet_end_minute
    row.daily_cap, row.updated_at = daily_cap, now()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="notifications.rules_save",
        org_id=org.id,
        subject_type="notification_rules",
        subject_id=row.id,
        details={"quiet": [quiet_start_minute, quiet_end_minute], "daily_cap": daily_cap},
    )
    return row


@dataclass(frozen=True)
class LogRow:
    delivery_id: int
    notification_id: int
    org_id: int
    user_id: int
    event: str
    channel: str
    status: str
    reason: str
    broadcast_id: int | None
    created_at: datetime
    updated_at: datetime


def delivery_log(
    session: Session,
    *,
    actor: Actor,
    org_id: int | None = None,
    user_id: int | None = None,
    status: DeliveryStatus | None = None,
    broadcast_id: int | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[LogRow]:
    """Deliveries of notifications in the caller's subtrees (``org_id``'s, if given),
    newest first."""
    query = (
        select(
            Delivery.id,
            Notification.id,
            Notification.org_id,
            Notification.user_id,
            Notification.event,
            Delivery.channel,
            Delivery.status,
            Delivery.reason,
            Notification.broadcast_id,
            Delivery.created_at,
            Delivery.updated_at,
        )
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(Org, Org.id == Notification.org_id)
    )
    if org_id is not None:
        org = _org(session, actor, org_id, Permission.MEMBERS_READ)
        query = query.where(subtree_condition(Org.path, [org.path]))
    elif not actor.is_platform_admin:
        query = query.where(subtree_condition(Org.path, actor.roots(Permission.MEMBERS_READ)))
    if user_id is not None:
        query = query.where(Notification.user_id == user_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    if broadcast_id is not None:
        query = query.where(Notification.broadcast_id == broadcast_id)
    if before_id is not None:
        query = query.where(Delivery.id < before_id)
    rows = session.execute(query.order_by(Delivery.id.desc()).limit(limit))
    return [LogRow(*row) for row in rows]

"""Broadcasts: a staff member writes a message to every member of an org's subtree; a
second staff member of that subtree approves it (or rejects it) before it goes; then it is
sent in queued batches, ``notifications_broadcast_per_s`` members a second, its progress
on the broadcast row."""

from __future__ import annotations

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.errors import Conflict, InvalidInput, PermissionDenied
from gonghui.members.models import Membership, MembershipStatus
from gonghui.notifications.errors import NotificationsError
from gonghui.notifications.models import Broadcast, BroadcastStatus, Channel, Event
from gonghui.notifications.service import Notice, notify_many
from gonghui.orgs.models import Org
from gonghui.settings import get_settings
from gonghui.tenancy import Actor, Permission, get_scoped, scoped, subtree_condition

SEND_BATCH = "notifications.broadcast_batch"
# A broadcast goes to the inbox and, as chosen, by SMS and subscribe message; never as an
# official account's template message, which WeChat's rules keep for service notices.
CHANNELS = (Channel.SMS, Channel.WECHAT)


def _members(org_path: str) -> Select[int, int, int]:
    return (
        select(Membership.id, Membership.user_id, Membership.org_id)
        .join(Org, Org.id == Membership.org_id)
        .where(
            subtree_condition(Org.path, [org_path]),
            Membership.status == MembershipStatus.VERIFIED,
        )
    )


def audience(session: Session, *, broadcast: Broadcast) -> int:
    """How many members the broadcast reaches (its org's subtree's verified members now)."""
    org = session.get_one(Org, broadcast.org_id)
    members = _members(org.path).subquery()
    return int(session.scalar(select(func.count()).select_from(members)) or 0)


def create(
    session: Session, *, actor: Actor, org_id: int, title: str, body: str, channels: list[str]
) -> Broadcast:
    org = get_scoped(session, Org, org_id, actor, Permission.MEMBERS_MANAGE)
    title, body = title.strip(), body.strip()
    if not title or not body or len(title) > 100 or len(body) > 500:
        raise InvalidInput(
            NotificationsError.BAD_TEMPLATE, "a title (up to 100) and a body (up to 500)"
        )
    outbound = sorted({str(Channel(c)) for c in channels if Channel(c) in CHANNELS})
    broadcast = Broadcast(
        org_id=org.id,
        title=title,
        body=body,
        channels=outbound,
        status=BroadcastStatus.PENDING,
        created_by=actor.user_id,
    )
    session.add(broadcast)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="notifications.broadcast_create",
        org_id=org.id,
        subject_type="notification_broadcast",
        subject_id=broadcast.id,
        details={"channels": outbound},
    )
    return broadcast


def get(session: Session, *, actor: Actor, broadcast_id: int) -> Broadcast:
    return get_scoped(session, Broadcast, broadcast_id, actor, Permission.MEMBERS_READ)


def list_broadcasts(session: Session, *, actor: Actor, limit: int = 50) -> list[Broadcast]:
    query = scoped(select(Broadcast), actor, Permission.MEMBERS_READ)
    return list(session.scalars(query.order_by(Broadcast.id.desc()).limit(limit)))


def _decide(
    session: Session, *, actor: Actor, broadcast_id: int, to: BroadcastStatus, note: str
) -> Broadcast:
    broadcast = get_scoped(session, Broadcast, broadcast_id, actor, Permission.MEMBERS_MANAGE)
    if broadcast.created_by == actor.user_id:
        raise PermissionDenied(
            NotificationsError.SAME_REVIEWER, "another staff member must review this broadcast"
        )
    total = audience(session, broadcast=broadcast) if to == BroadcastStatus.SENDING else 0
    moved = session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast.id, Broadcast.status == BroadcastStatus.PENDING)
        .values(
            status=to,
            reviewed_by=actor.user_id,
            reviewed_at=now(),
            review_note=note.strip()[:200],
            total=total,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(moved) != 1:
        raise Conflict(NotificationsError.NOT_PENDING, "the broadcast was already reviewed")
    session.refresh(broadcast)
    audit.record(
        session,
        actor=actor,
        action="notifications.broadcast_"
        + ("approve" if to == BroadcastStatus.SENDING else "reject"),
        org_id=broadcast.org_id,
        subject_type="notification_broadcast",
        subject_id=broadcast.id,
        reason=broadcast.review_note or None,
    )
    return broadcast


def approve(session: Session, *, actor: Actor, broadcast_id: int, note: str = "") -> Broadcast:
    broadcast = _decide(
        session, actor=actor, broadcast_id=broadcast_id, to=BroadcastStatus.SENDING, note=note
    )
    tasks.defer(session, SEND_BATCH, broadcast_id=broadcast.id)
    return broadcast


def reject(session: Session, *, actor: Actor, broadcast_id: int, note: str = "") -> Broadcast:
    return _decide(
        session, actor=actor, broadcast_id=broadcast_id, to=BroadcastStatus.REJECTED, note=note
    )


def send_batch(session: Session, *, broadcast_id: int) -> bool:
    """Notify the next batch of the broadcast's members; whether more remain (the next
    batch is then queued a second later, so the rate never passes the bound)."""
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
        return False
    per_s = get_settings().notifications_broadcast_per_s
    org = session.get_one(Org, broadcast.org_id)
    query = _members(org.path).where(Membership.id > broadcast.cursor)
    batch = session.execute(query.order_by(Membership.id).limit(per_s)).all()
    channels = tuple(Channel(c) for c in broadcast.channels)
    variables = {"title": broadcast.title, "body": broadcast.body}
    notify_many(
        session,
        [
            Notice(
                member_org_id, user_id, Event.BROADCAST, variables, False, broadcast.id, channels
            )
            for _, user_id, member_org_id in batch
        ],
    )
    if batch:
        broadcast.cursor = batch[-1][0]
    broadcast.sent_count += len(batch)
    more = len(batch) == per_s
    if more:
        tasks.defer(session, SEND_BATCH, delay_s=1.0, broadcast_id=broadcast.id)
    else:
        broadcast.status = BroadcastStatus.SENT
        broadcast.finished_at = now()
    return more


@tasks.task(SEND_BATCH, max_attempts=5)
def broadcast_batch(broadcast_id: int) -> None:
    with unit_of_work() as session:
        send_batch(session, broadcast_id=broadcast_id)
        tasks.complete(session)

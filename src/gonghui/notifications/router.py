"""HTTP for notifications: the signed-in user's own inbox, WeChat subscriptions and
activity reminders; staff's templates, delivery rules, delivery log and broadcasts."""

from __future__ import annotations

from fastapi import APIRouter

from gonghui.deps import CurrentMember, CurrentPrincipal, CurrentStaff, SessionDep
from gonghui.notifications import broadcasts, channels, reminders, service, templates
from gonghui.notifications.models import Channel, DeliveryStatus, Event, Notification
from gonghui.notifications.schemas import (
    BroadcastCreate,
    BroadcastRead,
    BroadcastReview,
    DeliveryRead,
    InboxRead,
    LogRowRead,
    MarkedRead,
    NotificationRead,
    ReminderRead,
    RulesRead,
    RulesWrite,
    SubscriptionsAccept,
    SubscriptionsRead,
    TemplateRead,
    TemplateWrite,
)
from gonghui.orgs.models import Org
from gonghui.tenancy import Permission, get_scoped
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

MAX_PAGE = 100


def _reads(session: SessionDep, rows: list[Notification]) -> list[NotificationRead]:
    found = service.deliveries_of(session, [n.id for n in rows])
    return [
        NotificationRead(
            id=n.id,
            org_id=n.org_id,
            event=n.event,
            title=n.title,
            body=n.body,
            created_at=n.created_at,
            read_at=n.read_at,
            deliveries=[DeliveryRead.model_validate(d) for d in found[n.id]],
        )
        for n in rows
    ]


# -- the signed-in user's own -----------------------------------------------------------------


@router.get("/inbox")
def my_inbox(
    principal: CurrentPrincipal, session: SessionDep, limit: Count = 20, before_id: Id | None = None
) -> InboxRead:
    """The caller's notifications, newest first, with each channel's delivery state."""
    limit = min(limit, MAX_PAGE)
    rows = service.inbox(session, user_id=principal.user_id, limit=limit, before_id=before_id)
    return InboxRead(
        items=_reads(session, rows),
        unread=service.unread_count(session, user_id=principal.user_id),
        next_before_id=rows[-1].id if len(rows) == limit and rows else None,
    )


@router.get("/inbox/{notification_id}")
def my_notification(
    notification_id: Id, principal: CurrentPrincipal, session: SessionDep
) -> NotificationRead:
    found = service.own_notification(
        session, user_id=principal.user_id, notification_id=notification_id
    )
    return _reads(session, [found])[0]


@router.post("/inbox/{notification_id}/read")
def mark_read(notification_id: Id, principal: CurrentPrincipal, session: SessionDep) -> MarkedRead:
    return MarkedRead(
        marked=service.mark_read(
            session, user_id=principal.user_id, notification_id=notification_id
        )
    )


@router.post("/inbox/read-all")
def mark_all_read(principal: CurrentPrincipal, session: SessionDep) -> MarkedRead:
    return MarkedRead(marked=service.mark_read(session, user_id=principal.user_id))


@router.post("/subscriptions")
def accept_subscriptions(
    body: SubscriptionsAccept, principal: CurrentPrincipal, session: SessionDep
) -> SubscriptionsRead:
    """Record that the member accepted these WeChat subscribe-message templates once each
    (what ``wx.requestSubscribeMessage`` answered): one message each may then be sent."""
    accepted = channels.accept_subscriptions(
        session, user_id=principal.user_id, template_ids=list(body.template_ids)
    )
    return SubscriptionsRead(accepted=accepted)


@router.put("/reminders/{activity_id}")
def remind_me(
    activity_id: Id, principal: CurrentPrincipal, member: CurrentMember, session: SessionDep
) -> ReminderRead:
    """Tell me when this scheduled activity starts."""
    reminders.remind(session, user_id=principal.user_id, member=member, activity_id=activity_id)
    return ReminderRead(activity_id=activity_id, reminded=True)


@router.delete("/reminders/{activity_id}")
def forget_reminder(
    activity_id: Id, principal: CurrentPrincipal, member: CurrentMember, session: SessionDep
) -> ReminderRead:
    reminders.forget(session, user_id=principal.user_id, activity_id=activity_id)
    return ReminderRead(activity_id=activity_id, reminded=False)


# -- staff ------------------------------------------------------------------------------------


@router.get("/orgs/{org_id}/templates")
def org_templates(org_id: Id, staff: CurrentStaff, session: SessionDep) -> list[TemplateRead]:
    """Every event's template on every channel as it applies to the org (its own, an
    ancestor's or the platform's), with the variables each may use."""
    return [
        TemplateRead(
            event=t.event,
            channel=t.channel,
            enabled=t.enabled,
            title=t.title,
            body=t.body,
            wechat_template_id=t.wechat_template_id,
            wechat_page=t.wechat_page,
            org_id=t.org_id,
            variables=list(templates.VARIABLES[t.event]),
        )
        for t in service.org_templates(session, actor=staff, org_id=org_id)
    ]


@router.put("/orgs/{org_id}/templates/{event}/{channel}")
def save_template(
    org_id: Id,
    event: Event,
    channel: Channel,
    body: TemplateWrite,
    staff: CurrentStaff,
    session: SessionDep,
) -> TemplateRead:
    row = service.save_template(
        session,
        actor=staff,
        org_id=org_id,
        event=event,
        channel=channel,
        enabled=body.enabled,
        title=body.title,
        body=body.body,
        wechat_template_id=body.wechat_template_id,
        wechat_page=body.wechat_page,
    )
    return TemplateRead(
        event=event,
        channel=channel,
        enabled=row.enabled,
        title=row.title,
        body=row.body,
        wechat_template_id=row.wechat_template_id,
        wechat_page=row.wechat_page,
        org_id=row.org_id,
        variables=list(templates.VARIABLES[event]),
    )


@router.get("/orgs/{org_id}/rules")
def org_rules(org_id: Id, staff: CurrentStaff, session: SessionDep) -> RulesRead:
    get_scoped(session, Org, org_id, staff, Permission.MEMBERS_READ)
    rule = service.rules(session, org_id)
    return RulesRead(
        quiet_start_minute=rule.quiet_start_minute,
        quiet_end_minute=rule.quiet_end_minute,
        daily_cap=rule.daily_cap,
        org_id=rule.org_id,
    )


@router.put("/orgs/{org_id}/rules")
def save_rules(org_id: Id, body: RulesWrite, staff: CurrentStaff, session: SessionDep) -> RulesRead:
    row = service.save_rules(
        session,
        actor=staff,
        org_id=org_id,
        quiet_start_minute=body.quiet_start_minute,
        quiet_end_minute=body.quiet_end_minute,
        daily_cap=body.daily_cap,
    )
    return RulesRead(
        quiet_start_minute=row.quiet_start_minute,
        quiet_end_minute=row.quiet_end_minute,
        daily_cap=row.daily_cap,
        org_id=row.org_id,
    )


@router.get("/deliveries")
def delivery_log(
    staff: CurrentStaff,
    session: SessionDep,
    org_id: Id | None = None,
    user_id: Id | None = None,
    status: DeliveryStatus | None = None,
    broadcast_id: Id | None = None,
    limit: Count = 50,
    before_id: Id | None = None,
) -> list[LogRowRead]:
    """Each notification's delivery per channel in the caller's subtrees, newest first."""
    rows = service.delivery_log(
        session,
        actor=staff,
        org_id=org_id,
        user_id=user_id,
        status=status,
        broadcast_id=broadcast_id,
        limit=min(limit, MAX_PAGE),
        before_id=before_id,
    )
    return [LogRowRead.model_validate(r) for r in rows]


@router.post("/broadcasts", status_code=201)
def create_broadcast(
    body: BroadcastCreate, staff: CurrentStaff, session: SessionDep
) -> BroadcastRead:
    """Write a broadcast to the org's subtree; it waits for another staff member's review."""
    found = broadcasts.create(
        session,
        actor=staff,
        org_id=body.org_id,
        title=body.title,
        body=body.body,
        channels=[str(c) for c in body.channels],
    )
    return BroadcastRead.model_validate(found)


@router.get("/broadcasts")
def list_broadcasts(
    staff: CurrentStaff, session: SessionDep, limit: Count = 50
) -> list[BroadcastRead]:
    found = broadcasts.list_broadcasts(session, actor=staff, limit=min(limit, MAX_PAGE))
    return [BroadcastRead.model_validate(b) for b in found]


@router.get("/broadcasts/{broadcast_id}")
def get_broadcast(broadcast_id: Id, staff: CurrentStaff, session: SessionDep) -> BroadcastRead:
    """A broadcast with its progress (``sent_count`` of ``total``)."""
    return BroadcastRead.model_validate(
        broadcasts.get(session, actor=staff, broadcast_id=broadcast_id)
    )


@router.post("/broadcasts/{broadcast_id}/approve")
def approve_broadcast(
    broadcast_id: Id, body: BroadcastReview, staff: CurrentStaff, session: SessionDep
) -> BroadcastRead:
    """Approve another staff member's broadcast: it starts going out."""
    found = broadcasts.approve(session, actor=staff, broadcast_id=broadcast_id, note=body.note)
    return BroadcastRead.model_validate(found)


@router.post("/broadcasts/{broadcast_id}/reject")
def reject_broadcast(
    broadcast_id: Id, body: BroadcastReview, staff: CurrentStaff, session: SessionDep
) -> BroadcastRead:
    found = broadcasts.reject(session, actor=staff, broadcast_id=broadcast_id, note=body.note)
    return BroadcastRead.model_validate(found)

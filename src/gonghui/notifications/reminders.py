""" "Remind me": a member asks to be told when a scheduled activity starts; a periodic
job on the task queue notifies them once it has."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.accounts.principal import MemberInfo
from gonghui.activities.models import Activity, ActivityStatus
from gonghui.clock import display_zone, now
from gonghui.db import unit_of_work, upsert_insert
from gonghui.errors import Conflict, NotFound
from gonghui.notifications.errors import NotificationsError
from gonghui.notifications.models import Event, Reminder
from gonghui.notifications.service import Notice, notify_many
from gonghui.orgs.models import Org
from gonghui.settings import get_settings
from gonghui.tenancy import path_within

SEND_REMINDERS = "notifications.reminders"
BATCH = 500


def _visible(session: Session, member: MemberInfo, activity_id: int) -> Activity:
    """An activity the member sees: one of an org on their path (their org or above)."""
    row = session.execute(
        select(Activity, Org.path)
        .join(Org, Org.id == Activity.org_id)
        .where(Activity.id == activity_id)
    ).first()
    if row is None or not path_within(member.org_path, row[1]):
        raise NotFound(NotificationsError.NOT_FOUND, "no such activity")
    return row[0]


def remind(session: Session, *, user_id: int, member: MemberInfo, activity_id: int) -> Reminder:
    """Ask to be reminded when the activity starts; asking twice keeps one reminder."""
    activity = _visible(session, member, activity_id)
    if (
        activity.status not in (ActivityStatus.SCHEDULED, ActivityStatus.LIVE)
        or activity.starts_at <= now()
    ):
        raise Conflict(NotificationsError.NOT_SCHEDULED, "the activity has no start to wait for")
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(
        insert(Reminder)
        .values(
            activity_id=activity.id,
            user_id=user_id,
            org_id=member.org_id,
            starts_at=activity.starts_at,
            created_at=now(),
        )
        .on_conflict_do_nothing(index_elements=["activity_id", "user_id"])
    )
    return session.scalars(
        select(Reminder).where(Reminder.activity_id == activity.id, Reminder.user_id == user_id)
    ).one()


def forget(session: Session, *, user_id: int, activity_id: int) -> None:
    session.execute(
        delete(Reminder).where(
            Reminder.activity_id == activity_id,
            Reminder.user_id == user_id,
            Reminder.sent_at.is_(None),
        )
    )


def is_reminded(session: Session, *, user_id: int, activity_id: int) -> bool:
    return (
        session.scalar(
            select(Reminder.id).where(
                Reminder.activity_id == activity_id,
                Reminder.user_id == user_id,
                Reminder.sent_at.is_(None),
            )
        )
        is not None
    )


def send_due(session: Session, *, limit: int = BATCH) -> int:
    """Notify the members whose activities have started; how many were told."""
    at = now()
    due = session.execute(
        select(Reminder, Activity)
        .join(Activity, Activity.id == Reminder.activity_id)
        .where(Reminder.sent_at.is_(None), Reminder.starts_at <= at)
        .order_by(Reminder.starts_at, Reminder.id)
        .limit(limit)
    ).all()
    notices: list[Notice] = []
    for reminder, activity in due:
        if activity.starts_at > at:  # moved later: wait for the new start
            reminder.starts_at = activity.starts_at
            continue
        reminder.sent_at = at
        if activity.status not in (ActivityStatus.SCHEDULED, ActivityStatus.LIVE):
            continue
        starts_at = activity.starts_at.astimezone(display_zone()).strftime("%m-%d %H:%M")
        notices.append(
            Notice(
                reminder.org_id,
                reminder.user_id,
                Event.ACTIVITY_STARTING,
                {"activity": activity.title, "starts_at": starts_at},
            )
        )
    notify_many(session, notices)
    return len(notices)


@tasks.periodic(SEND_REMINDERS, every_s=lambda: get_settings().notifications_reminder_check_s)
def send_reminders() -> None:
    with unit_of_work() as session:
        send_due(session)

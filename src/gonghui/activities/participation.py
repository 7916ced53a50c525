"""A member taking part: visibility (org chain), eligibility and per-member limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.service import effective_status
from gonghui.clock import local_day
from gonghui.errors import Conflict, NotFound, PermissionDenied
from gonghui.orgs.models import Org

UNLIMITED = 2**31 - 1


def chain_ids(org_path: str) -> list[int]:
    """The member's org and every ancestor: "/1/7/42/" → [1, 7, 42]."""
    return [int(p) for p in org_path.strip("/").split("/") if p]


def visible_activity(session: Session, *, member: MemberInfo, activity_id: int) -> Activity:
    """The activity if its org is in the member's chain and it is published; else 404."""
    activity = session.get(Activity, activity_id)
    if (
        activity is None
        or activity.org_id not in chain_ids(member.org_path)
        or activity.status == ActivityStatus.DRAFT
    ):
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return activity


def eligibility_problem(*, member: MemberInfo, eligibility: Mapping[str, Any]) -> str | None:
    """Why the member may not take part under an activity's eligibility rules, or None."""
    tags = eligibility.get("tags_any") or []
    if tags and not set(tags) & set(member.tags):
        return "this activity is for members with certain tags"
    min_days = int(eligibility.get("min_membership_days") or 0)
    if min_days and (local_day() - member.member_since).days < min_days:
        return f"members of at least {min_days} days only"
    return None


def live_activity(
    session: Session, *, member: MemberInfo, activity_id: int, kinds: set[ActivityKind]
) -> Activity:
    """The activity the member may act in right now, or the reason why not."""
    activity = visible_activity(session, member=member, activity_id=activity_id)
    if activity.kind not in kinds:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    status = effective_status(activity)
    if status is not ActivityStatus.LIVE:
        raise Conflict(
            ActivitiesError.NOT_LIVE, f"the activity is {status}", {"status": str(status)}
        )
    problem = eligibility_problem(member=member, eligibility=activity.eligibility or {})
    if problem is not None:
        raise PermissionDenied(ActivitiesError.NOT_ELIGIBLE, problem)
    # Locate the org row too: a member whose union is archived does not take part.
    org = session.get(Org, activity.org_id)
    if org is None or org.archived_at is not None:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return activity


def claim_participation(session: Session, *, member: MemberInfo, activity: Activity) -> None:
    """Count one participation (a draw, a quiz attempt) against the per-member limits, and
    tell the hook bus that the member took part.

    Raises before anything else is written; the caller's transaction rolls back."""
    if activity.limit_total is not None or activity.limit_per_day is not None:
        total_ok = counters.claim(
            session,
            activity_id=activity.id,
            membership_id=member.membership_id,
            scope="limit",
            granted=activity.limit_total or UNLIMITED,
        )
        if not total_ok:
            raise Conflict(ActivitiesError.LIMIT_TOTAL, "you have used all your turns")
    if activity.limit_per_day is not None:
        day_ok = counters.claim(
            session,
            activity_id=activity.id,
            membership_id=member.membership_id,
            scope=f"limit:{local_day().isoformat()}",
            granted=activity.limit_per_day,
        )
        if not day_ok:
            raise Conflict(ActivitiesError.LIMIT_DAY, "no more turns today; come back tomorrow")
    hooks.emit(
        session,
        org_id=activity.org_id,
        event=hooks.OrgEvent.PARTICIPATED,
        payload={
            "activity_id": activity.id,
            "kind": str(activity.kind),
            "membership_id": member.membership_id,
        },
    )

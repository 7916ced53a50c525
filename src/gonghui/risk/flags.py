"""Anomaly flags: raised with their evidence when a threshold is crossed, reviewed by the
operators of the flagged activity's org subtree (audited), and able to pause an activity
by themselves (its policy's ``pause_after_flags``) through the activities' own pause."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.activities import service as activities
from gonghui.activities.models import Activity, ActivityStatus
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import get_engine, unit_of_work, upsert_insert
from gonghui.errors import Conflict
from gonghui.risk import policy
from gonghui.risk.errors import RiskError
from gonghui.risk.models import Flag, FlagKind, FlagStatus
from gonghui.tenancy import SYSTEM, Actor, Permission, get_scoped, scoped

log = logging.getLogger(__name__)

REVIEW = Permission.ACTIVITIES_MANAGE


def _key(activity_id: int | None) -> str:
    return str(activity_id or 0)


def raise_flag(
    *,
    kind: FlagKind,
    subject: str,
    org_id: int,
    activity_id: int | None,
    window: int,
    evidence: dict[str, Any],
) -> bool:
    """Record a flag in a transaction of its own, once per (kind, subject, activity,
    window) however many processes cross the threshold; pause the activity when its
    open flags reach the policy's ``pause_after_flags``. True if this call raised it."""
    dedupe = f"{kind}:{subject}:{activity_id or 0}:{window}"[:200]
    table = Flag.__table__
    insert = upsert_insert(get_engine().dialect.name)(table)
    with unit_of_work() as session:
        raised = session.execute(
            insert.values(
                org_id=org_id,
                activity_id=activity_id,
                kind=kind,
                subject=subject[:160],
                dedupe=dedupe,
                status=FlagStatus.OPEN,
                evidence=evidence,
                raised_at=now(),
            )
            .on_conflict_do_nothing(index_elements=[table.c.dedupe])
            .returning(table.c.id)
        ).first()
        if raised is None:
            return False
        log.warning(
            "risk flag raised",
            extra={"fields": {"kind": str(kind), "subject": subject, "activity": activity_id}},
        )
        invalidation.changed(session, policy.TOPIC, _key(activity_id))
        if activity_id is not None:
            _maybe_pause(session, activity_id, flag_id=raised.id)
    return True


def _maybe_pause(session: Session, activity_id: int, *, flag_id: int) -> None:
    risk = policy.load(activity_id)
    if risk is None or risk.limits.pause_after_flags is None:
        return
    open_flags = session.scalar(
        select(func.count())
        .select_from(Flag)
        .where(Flag.activity_id == activity_id, Flag.status == FlagStatus.OPEN)
    )
    if (open_flags or 0) < risk.limits.pause_after_flags:
        return
    activity = session.get(Activity, activity_id)
    if activity is None or activities.effective_status(activity) is not ActivityStatus.LIVE:
        return
    activities.pause(session, actor=SYSTEM, activity_id=activity_id)
    audit.record(
        session,
        actor=None,
        action="risk.auto_pause",
        org_id=activity.org_id,
        subject_type="activity",
        subject_id=activity_id,
        details={"open_flags": open_flags, "threshold": risk.limits.pause_after_flags},
        reason=f"risk flag {flag_id}",
    )


def list_flags(
    session: Session,
    *,
    actor: Actor,
    status: FlagStatus | None = None,
    activity_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Flag]:
    """Flags of the operator's subtree, newest first."""
    stmt = scoped(select(Flag), actor, REVIEW)
    if status is not None:
        stmt = stmt.where(Flag.status == status)
    if activity_id is not None:
        stmt = stmt.where(Flag.activity_id == activity_id)
    if before is not None:
        stmt = stmt.where(Flag.id < before)
    return list(session.scalars(stmt.order_by(Flag.id.desc()).limit(min(max(limit, 1), 200))))


def count_open(session: Session, *, actor: Actor) -> int:
    """Open flags of the caller's subtree (the console home's alert)."""
    stmt = scoped(select(func.count(Flag.id)), actor, REVIEW).where(Flag.status == FlagStatus.OPEN)
    return int(session.scalar(stmt) or 0)


def review(
    session: Session, *, actor: Actor, flag_id: int, decision: FlagStatus, note: str | None
) -> Flag:
    """An operator confirms a flag (its subject stays challenged) or dismisses it (its
    subject is let through: a company's shared address); audited."""
    if decision is FlagStatus.OPEN:
        raise Conflict(RiskError.FLAG_REVIEWED, "a review confirms or dismisses")
    flag = get_scoped(session, Flag, flag_id, actor, REVIEW)
    if flag.status != FlagStatus.OPEN:
        raise Conflict(RiskError.FLAG_REVIEWED, f"this flag is already {flag.status}")
    flag.status, flag.reviewed_by, flag.reviewed_at, flag.note = (
        decision,
        actor.user_id,
        now(),
        note,
    )
    audit.record(
        session,
        actor=actor,
        action=f"risk.flag_{decision}",
        org_id=flag.org_id,
        subject_type="risk_flag",
        subject_id=flag.id,
        reason=note,
        details={"kind": str(flag.kind), "subject": flag.subject, "activity_id": flag.activity_id},
    )
    invalidation.changed(session, policy.TOPIC, _key(flag.activity_id))
    return flag


def window_of(at: datetime, window_s: int) -> int:
    return int(at.timestamp()) // window_s

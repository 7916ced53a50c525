"""What an operator watches while an activity runs: draws, stock, budget, quiz passes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from gonghui.activities.lottery.models import Draw, DrawOutcome, PoolPrize
from gonghui.activities.quiz.models import Attempt
from gonghui.activities.service import effective_status, get_activity
from gonghui.benefits.models import Budget
from gonghui.members.models import Membership
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor


def activity_stats(session: Session, *, actor: Actor, activity_id: int) -> dict[str, Any]:
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    draws, drawers = session.execute(
        select(func.count(Draw.id), func.count(distinct(Draw.membership_id))).where(
            Draw.activity_id == activity.id
        )
    ).one()
    won = {
        row[0]: int(row[1])
        for row in session.execute(
            select(Draw.prize_position, func.count())
            .where(Draw.activity_id == activity.id, Draw.outcome == DrawOutcome.WON)
            .group_by(Draw.prize_position)
        )
    }
    pool = session.scalars(
        select(PoolPrize).where(PoolPrize.activity_id == activity.id).order_by(PoolPrize.position)
    )
    attempts, passed = session.execute(
        select(
            func.count(Attempt.id),
            func.count(Attempt.id).filter(Attempt.passed.is_(True)),
        ).where(Attempt.activity_id == activity.id)
    ).one()
    budget = session.get(Budget, activity.id)
    return {
        "activity_id": activity.id,
        "status": str(effective_status(activity)),
        "draws": int(draws),
        "members_drawing": int(drawers),
        "prizes": [
            {
                "position": p.position,
                "name": p.name,
                "kind": str(p.kind),
                "initial_stock": p.initial_stock,
                "stock": p.stock,
                "won": won.get(p.position, 0),
            }
            for p in pool
        ],
        "quiz_attempts": int(attempts),
        "quiz_passed": int(passed),
        "budget": None
        if budget is None
        else {
            "cents_total": budget.cents_total,
            "cents_spent": budget.cents_spent,
            "points_total": budget.points_total,
            "points_spent": budget.points_spent,
        },
    }


def draws_by_hour(session: Session, *, actor: Actor, activity_id: int) -> list[dict[str, Any]]:
    """Draws per UTC hour, oldest first, for the dashboard's chart over time."""
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    if session.get_bind().dialect.name == "sqlite":
        bucket = func.strftime("%Y-%m-%dT%H:00:00", Draw.at)
    else:
        utc = func.timezone("UTC", Draw.at)
        bucket = func.to_char(func.date_trunc("hour", utc), 'YYYY-MM-DD"T"HH24:00:00')
    rows = session.execute(
        select(bucket.label("hour"), func.count())
        .where(Draw.activity_id == activity.id)
        .group_by("hour")
        .order_by("hour")
    )
    return [
        {"hour": datetime.fromisoformat(str(hour)).replace(tzinfo=UTC), "draws": int(n)}
        for hour, n in rows
    ]


def draws_by_org(session: Session, *, actor: Actor, activity_id: int) -> list[dict[str, Any]]:
    """Draws, members drawing and wins per member's union, most draws first."""
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    rows = session.execute(
        select(
            Org.id,
            Org.name,
            func.count(Draw.id),
            func.count(distinct(Draw.membership_id)),
            func.count(Draw.id).filter(Draw.outcome == DrawOutcome.WON),
        )
        .join(Membership, Membership.id == Draw.membership_id)
        .join(Org, Org.id == Membership.org_id)
        .where(Draw.activity_id == activity.id)
        .group_by(Org.id, Org.name)
        .order_by(func.count(Draw.id).desc(), Org.id)
    )
    return [
        {"org_id": oid, "org_name": name, "draws": int(d), "members": int(m), "won": int(w)}
        for oid, name, d, m, w in rows
    ]

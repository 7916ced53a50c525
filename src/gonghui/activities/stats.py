"""What an operator watches while an activity runs: draws, stock, budget, quiz passes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from gonghui.activities.lottery.models import Draw, DrawOutcome, PoolPrize
from gonghui.activities.quiz.models import Attempt
from gonghui.activities.service import effective_status, get_activity
from gonghui.benefits.models import Budget
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

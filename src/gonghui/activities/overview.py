"""The console home's figures about activities, over the caller's subtree: the live ones,
today's participation, prizes waiting to be shipped and budgets running low.

Each figure is one COUNT (or a short LIMITed list) over an index: the activities' window
(``status, starts_at``), draws, quiz attempts and votes by (activity, time), voucher
claims by (activity, state, time), prizes by (activity, status). With 100,000 members and
1,000 activities (bench/console_home, SQLite) the whole home page answers in 14-18 ms
(p50; p99 46-62 ms on a shared machine), against a target of 300 ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from gonghui.activities.lottery.models import Draw
from gonghui.activities.models import Activity, ActivityStatus
from gonghui.activities.quiz.models import Attempt
from gonghui.activities.vote.models import Vote
from gonghui.activities.voucher_grab.models import ClaimState, VoucherClaim
from gonghui.benefits.models import Budget, Prize, PrizeStatus
from gonghui.clock import now, start_of_local_day
from gonghui.tenancy import Actor, Permission, scoped

MANAGE = Permission.ACTIVITIES_MANAGE
# A budget is running low once this share of it is spent.
LOW_BUDGET = 0.9


def live_at(at: datetime) -> ColumnElement[bool]:
    """SQL for "members see it live at ``at``" (``service.status_at`` in SQL)."""
    return and_(
        Activity.status.in_((ActivityStatus.LIVE, ActivityStatus.SCHEDULED)),
        Activity.starts_at <= at,
        Activity.ends_at > at,
    )


def _all_ids(actor: Actor) -> Select[Any]:
    """The ids of the caller's activities (``scoped`` reads the entity off the column)."""
    return scoped(select(Activity.id), actor, MANAGE)


def _ids(actor: Actor, condition: ColumnElement[bool]) -> Select[Any]:
    return _all_ids(actor).where(condition)


def count_live(session: Session, *, actor: Actor) -> int:
    stmt = scoped(select(func.count(Activity.id)), actor, MANAGE)
    return int(session.scalar(stmt.where(live_at(now()))) or 0)


def live_activities(session: Session, *, actor: Actor, limit: int = 5) -> list[Activity]:
    """The live activities ending soonest first."""
    stmt = scoped(select(Activity), actor, MANAGE).where(live_at(now()))
    return list(session.scalars(stmt.order_by(Activity.ends_at, Activity.id).limit(limit)))


@dataclass(frozen=True)
class Participation:
    draws: int
    quiz_attempts: int
    votes: int
    voucher_claims: int

    @property
    def total(self) -> int:
        return self.draws + self.quiz_attempts + self.votes + self.voucher_claims


def participation_today(session: Session, *, actor: Actor) -> Participation:
    """What members did today (the display zone's day) in the caller's activities that
    ran today: draws, quiz attempts started, votes cast, vouchers claimed."""
    instant, since = now(), start_of_local_day()
    ran_today = _ids(
        actor,
        and_(
            Activity.status != ActivityStatus.DRAFT,
            Activity.starts_at <= instant,
            Activity.ends_at > since,
        ),
    )

    def count(column: Any, at: Any, *extra: ColumnElement[bool]) -> int:
        stmt = select(func.count()).where(column.in_(ran_today), at >= since, *extra)
        return int(session.scalar(stmt) or 0)

    return Participation(
        draws=count(Draw.activity_id, Draw.at),
        quiz_attempts=count(Attempt.activity_id, Attempt.started_at),
        votes=count(Vote.activity_id, Vote.at),
        # Every state, so that the (activity, state, time) index serves the range.
        voucher_claims=count(
            VoucherClaim.activity_id,
            VoucherClaim.claimed_at,
            VoucherClaim.state.in_([s.value for s in ClaimState]),
        ),
    )


@dataclass(frozen=True)
class ToShip:
    activity_id: int
    title: str
    prizes: int


def prizes_to_ship(session: Session, *, actor: Actor, limit: int = 5) -> tuple[int, list[ToShip]]:
    """Prizes with an address given and not yet shipped: how many in all, and the
    activities holding the most."""
    waiting = and_(Prize.status == PrizeStatus.TO_SHIP, Prize.activity_id.in_(_all_ids(actor)))
    total = int(session.scalar(select(func.count(Prize.id)).where(waiting)) or 0)
    if not total:
        return 0, []
    rows = session.execute(
        select(Activity.id, Activity.title, func.count(Prize.id))
        .join(Activity, Activity.id == Prize.activity_id)
        .where(waiting)
        .group_by(Activity.id, Activity.title)
        .order_by(func.count(Prize.id).desc(), Activity.id)
        .limit(limit)
    )
    return total, [ToShip(a, t, int(n)) for a, t, n in rows]


@dataclass(frozen=True)
class LowBudget:
    activity_id: int
    title: str
    spent_share: float


def budgets_running_low(session: Session, *, actor: Actor, limit: int = 5) -> list[LowBudget]:
    """Live activities that spent at least ``LOW_BUDGET`` of their money or points budget,
    the most spent first."""
    low = or_(
        and_(Budget.cents_total > 0, Budget.cents_spent >= Budget.cents_total * LOW_BUDGET),
        and_(Budget.points_total > 0, Budget.points_spent >= Budget.points_total * LOW_BUDGET),
    )
    rows = session.execute(
        select(
            Activity.id,
            Activity.title,
            Budget.cents_total,
            Budget.cents_spent,
            Budget.points_total,
            Budget.points_spent,
        )
        .join(Budget, Budget.activity_id == Activity.id)
        .where(Activity.id.in_(_ids(actor, live_at(now()))), low)
        .order_by(Activity.id)
        .limit(limit)
    )
    found = []
    for activity_id, title, cents_total, cents_spent, points_total, points_spent in rows:
        shares = [
            spent / total
            for total, spent in ((cents_total, cents_spent), (points_total, points_spent))
            if total
        ]
        found.append(LowBudget(activity_id, title, max(shares)))
    return sorted(found, key=lambda b: -b.spent_share)

"""One draw, as one transaction: claim a chance, roll, take stock, issue, log, answer.

Everything is written before the response leaves (the request's unit of work commits
first), so a member never sees a win the ledger does not hold, even across ``kill -9``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters, idempotency
from gonghui.activities.lottery import fairness
from gonghui.activities.lottery.errors import LotteryError
from gonghui.activities.lottery.models import Draw, DrawOutcome, PoolPrize, PrizeKind
from gonghui.activities.models import Activity, ActivityKind
from gonghui.activities.participation import claim_participation, live_activity
from gonghui.activities.schemas import LotteryRules
from gonghui.activities.service import lottery_rules
from gonghui.benefits import service as benefits
from gonghui.clock import local_day, now
from gonghui.db import rowcount
from gonghui.errors import Conflict

LOTTERY_KINDS = {ActivityKind.LOTTERY, ActivityKind.QUIZ_LOTTERY}


@dataclass(frozen=True)
class ChanceScopes:
    free_today: str
    earned: str = "earned"


def chance_scopes() -> ChanceScopes:
    return ChanceScopes(free_today=f"free:{local_day().isoformat()}")


def chances_left(session: Session, *, activity: Activity, membership_id: int) -> int:
    rules = lottery_rules(activity)
    if rules is None:
        return 0
    scopes = chance_scopes()
    left = counters.remaining(
        session,
        activity_id=activity.id,
        membership_id=membership_id,
        scopes={scopes.free_today: rules.free_draws_per_day, scopes.earned: 0},
    )
    return sum(left.values())


def _pool(session: Session, activity_id: int) -> list[PoolPrize]:
    """The prize pool, read once per transaction (a batch of draws shares it). Only its
    names, kinds, values and weights are read from it: stock is taken in SQL."""
    pools: dict[int, list[PoolPrize]] = session.info.setdefault("lottery.pools", {})
    if activity_id not in pools:
        pools[activity_id] = list(
            session.scalars(
                select(PoolPrize)
                .where(PoolPrize.activity_id == activity_id)
                .order_by(PoolPrize.position)
            )
        )
    return pools[activity_id]


def _claim_chance(session: Session, activity: Activity, rules: LotteryRules, member: int) -> None:
    scopes = chance_scopes()
    if rules.free_draws_per_day and counters.claim(
        session,
        activity_id=activity.id,
        membership_id=member,
        scope=scopes.free_today,
        granted=rules.free_draws_per_day,
    ):
        return
    if counters.claim(
        session, activity_id=activity.id, membership_id=member, scope=scopes.earned, granted=0
    ):
        return
    raise Conflict(LotteryError.NO_CHANCES, "no draw chances left")


def _take_prize(
    session: Session, activity: Activity, rules: LotteryRules, member: int, prize: PoolPrize
) -> tuple[DrawOutcome, str | None]:
    """Claim a win, a unit of stock and the budget, all or none (a savepoint)."""
    if prize.kind == PrizeKind.NONE:
        return DrawOutcome.NO_PRIZE, None
    savepoint = session.begin_nested()
    if rules.max_wins_per_member is not None and not counters.claim(
        session,
        activity_id=activity.id,
        membership_id=member,
        scope="wins",
        granted=rules.max_wins_per_member,
    ):
        savepoint.rollback()
        return DrawOutcome.WIN_CAP, None
    taken = session.execute(
        update(PoolPrize)
        .where(PoolPrize.id == prize.id, PoolPrize.stock > 0)
        .values(stock=PoolPrize.stock - 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        savepoint.rollback()
        return DrawOutcome.OUT_OF_STOCK, None
    spec = rules.prizes[prize.position]
    cents = prize.value if prize.kind == PrizeKind.VOUCHER else 0
    points = prize.value if prize.kind == PrizeKind.POINTS else 0
    if not benefits.charge_budget(session, activity_id=activity.id, cents=cents, points=points):
        savepoint.rollback()
        return DrawOutcome.BUDGET, None
    savepoint.commit()
    source = f"lottery:{activity.id}"
    if prize.kind == PrizeKind.VOUCHER:
        voucher = benefits.issue_voucher(
            session,
            membership_id=member,
            activity_id=activity.id,
            name=prize.name,
            value_cents=prize.value,
            threshold_cents=spec.threshold_cents,
            valid_days=spec.valid_days,
            source=source,
        )
        return DrawOutcome.WON, f"voucher:{voucher.id}"
    if prize.kind == PrizeKind.POINTS:
        benefits.add_points(
            session,
            membership_id=member,
            activity_id=activity.id,
            points=prize.value,
            source=source,
        )
        return DrawOutcome.WON, f"points:{prize.value}"
    physical = benefits.issue_prize(
        session,
        membership_id=member,
        activity_id=activity.id,
        name=prize.name,
        address_deadline=now() + timedelta(hours=rules.address_deadline_hours),
        source=source,
    )
    return DrawOutcome.WON, f"prize:{physical.id}"


def _draw(
    session: Session, *, member: MemberInfo, activity_id: int, client_entropy: str
) -> dict[str, Any]:
    activity = live_activity(session, member=member, activity_id=activity_id, kinds=LOTTERY_KINDS)
    rules = lottery_rules(activity)
    assert rules is not None
    assert activity.seed is not None
    membership_id = member.membership_id
    _claim_chance(session, activity, rules, membership_id)
    claim_participation(session, member=member, activity=activity)
    draw_no = counters.next_number(
        session, activity_id=activity.id, membership_id=membership_id, scope="draws"
    )
    pool = _pool(session, activity.id)
    roll = fairness.roll(
        seed=activity.seed,
        activity_id=activity.id,
        member=membership_id,
        draw_no=draw_no,
        entropy=client_entropy,
    )
    picked = pool[fairness.pick(roll, [p.weight for p in pool])]
    outcome, benefit = _take_prize(session, activity, rules, membership_id, picked)
    won = outcome is DrawOutcome.WON
    draw = Draw(
        activity_id=activity.id,
        membership_id=membership_id,
        draw_no=draw_no,
        client_entropy=client_entropy,
        roll=roll,
        picked_position=picked.position,
        prize_position=picked.position if won else None,
        outcome=outcome,
        benefit_ref=benefit,
        at=now(),
    )
    session.add(draw)
    session.flush()
    if won:
        hooks.emit(
            session,
            org_id=activity.org_id,
            event=hooks.OrgEvent.PRIZE_WON,
            payload={
                "activity_id": activity.id,
                "membership_id": membership_id,
                "draw_id": draw.id,
                "prize": {"name": picked.name, "kind": str(picked.kind), "value": picked.value},
            },
        )
    return {
        "draw_id": draw.id,
        "activity_id": activity.id,
        "draw_no": draw_no,
        "outcome": str(outcome),
        "won": won,
        "prize": (
            {
                "position": picked.position,
                "name": picked.name,
                "kind": str(picked.kind),
                "value": picked.value,
            }
            if won
            else None
        ),
        "benefit": benefit,
        "roll": roll,
        "chances_left": chances_left(session, activity=activity, membership_id=membership_id),
        "at": draw.at.isoformat(),
    }


def draw(
    session: Session,
    *,
    member: MemberInfo,
    activity_id: int,
    client_entropy: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Draw once in ``activity_id``; a retry with the same key gets the same answer."""
    return idempotency.run_once(
        session,
        membership_id=member.membership_id,
        key=idempotency_key,
        operation=f"lottery.draw:{activity_id}",
        action=lambda: _draw(
            session, member=member, activity_id=activity_id, client_entropy=client_entropy
        ),
    )

"""What a lottery publishes: the seed commitment, then the seed and ordered draw log, and
the winner list with masked names."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.activities.errors import ActivitiesError
from gonghui.activities.lottery import fairness
from gonghui.activities.lottery.models import Draw, DrawOutcome, PoolPrize
from gonghui.activities.models import Activity, ActivityKind, ActivityStatus
from gonghui.activities.service import effective_status, lottery_rules
from gonghui.errors import NotFound
from gonghui.members.models import Membership, RosterEntry
from gonghui.pii import PiiField, masked


def _published_lottery(session: Session, activity_id: int) -> Activity:
    activity = session.get(Activity, activity_id)
    if (
        activity is None
        or activity.kind not in (ActivityKind.LOTTERY, ActivityKind.QUIZ_LOTTERY)
        or activity.status == ActivityStatus.DRAFT
    ):
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return activity


def draw_log(session: Session, *, activity_id: int) -> dict[str, Any]:
    """The public proof; the seed and the draws only once the lottery has ended."""
    activity = _published_lottery(session, activity_id)
    status = effective_status(activity)
    ended = status in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED)
    rules = lottery_rules(activity)
    pool = session.scalars(
        select(PoolPrize).where(PoolPrize.activity_id == activity.id).order_by(PoolPrize.position)
    )
    log: dict[str, Any] = {
        "activity_id": activity.id,
        "status": str(status),
        "seed_commitment": activity.seed_commitment,
        "seed": activity.seed if ended else None,
        "max_wins_per_member": rules.max_wins_per_member if rules else None,
        "prizes": [
            {
                "position": p.position,
                "name": p.name,
                "kind": str(p.kind),
                "weight": p.weight,
                "initial_stock": p.initial_stock,
            }
            for p in pool
        ],
        "draws": [],
    }
    if ended:
        draws = session.scalars(
            select(Draw).where(Draw.activity_id == activity.id).order_by(Draw.id)
        )
        assert activity.seed is not None
        pseudonymous = fairness.pseudonymous(activity.seed, activity.seed_commitment)

        def member(membership_id: int) -> int | str:
            if not pseudonymous:  # published before pseudonyms: its rolls used the ids
                return membership_id
            return fairness.pseudonym(activity_id=activity.id, membership_id=membership_id)

        log["draws"] = [
            {
                "member": member(d.membership_id),
                "draw_no": d.draw_no,
                "entropy": d.client_entropy,
                "roll": d.roll,
                "picked_position": d.picked_position,
                "prize_position": d.prize_position,
                "outcome": str(d.outcome),
            }
            for d in draws
        ]
    return log


def winners(session: Session, *, activity_id: int, limit: int = 200) -> list[dict[str, Any]]:
    """Winners with masked names, newest first."""
    activity = _published_lottery(session, activity_id)
    rows = session.execute(
        select(Draw, PoolPrize.name, RosterEntry.name_enc)
        .join(
            PoolPrize,
            (PoolPrize.activity_id == Draw.activity_id)
            & (PoolPrize.position == Draw.prize_position),
        )
        .join(Membership, Membership.id == Draw.membership_id)
        .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
        .where(Draw.activity_id == activity.id, Draw.outcome == DrawOutcome.WON)
        .order_by(Draw.id.desc())
        .limit(min(limit, 1000))
    ).all()
    return [
        {"name": masked(PiiField.NAME, name_enc), "prize": prize_name, "at": d.at}
        for d, prize_name, name_enc in rows
    ]

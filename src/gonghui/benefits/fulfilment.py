"""Prizes whose delivery address never came are forfeited (a ledger row each).

Operators' shipping of an activity's prizes is :mod:`gonghui.activities.fulfilment`.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.benefits.models import LedgerAction, LedgerEntry, LedgerKind, Prize, PrizeStatus
from gonghui.clock import now
from gonghui.db import rowcount


def forfeit_unclaimed(session: Session) -> int:
    """Prizes still waiting for an address after the deadline are forfeited (ledger row)."""
    due = list(
        session.scalars(
            select(Prize).where(
                Prize.status == PrizeStatus.AWAITING_ADDRESS, Prize.address_deadline < now()
            )
        )
    )
    count = 0
    for prize in due:
        moved = session.execute(
            update(Prize)
            .where(Prize.id == prize.id, Prize.status == PrizeStatus.AWAITING_ADDRESS)
            .values(status=PrizeStatus.FORFEITED)
            .execution_options(synchronize_session=False)
        )
        if rowcount(moved) == 1:
            session.add(
                LedgerEntry(
                    membership_id=prize.membership_id,
                    activity_id=prize.activity_id,
                    kind=LedgerKind.PRIZE,
                    action=LedgerAction.EXPIRE,
                    amount=-1,
                    prize_id=prize.id,
                    source="system",
                    details={"reason": "no delivery address before the deadline"},
                    at=now(),
                )
            )
            count += 1
    return count

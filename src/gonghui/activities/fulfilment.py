"""Operators ship an activity's physical prizes.

The delivery address is sealed personal data: the list shows it masked, and revealing it
for shipping needs ``pii.unmask`` and writes an audit row. (The winners' side, giving an
address and forfeiting a prize whose address never came, is the wallet's:
:mod:`gonghui.benefits`.)
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.activities import service as activities
from gonghui.audit import service as audit
from gonghui.benefits.addresses import address_view
from gonghui.benefits.errors import BenefitsError
from gonghui.benefits.models import Prize, PrizeStatus
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import Conflict, NotFound, PermissionDenied
from gonghui.members.models import Membership, RosterEntry
from gonghui.orgs.models import Org
from gonghui.pii import PiiField, masked
from gonghui.tenancy import Actor, Permission


@dataclass(frozen=True)
class PrizeLine:
    prize: Prize
    winner: str | None
    address: dict[str, str] | None


def list_prizes(
    session: Session, *, actor: Actor, activity_id: int, reveal: bool = False
) -> list[PrizeLine]:
    activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
    if reveal:
        org = session.get(Org, activity.org_id)
        assert org is not None
        if not actor.can(Permission.PII_UNMASK, org.path):
            raise PermissionDenied("auth.forbidden", "revealing addresses needs pii.unmask")
    rows = session.execute(
        select(Prize, RosterEntry.name_enc)
        .join(Membership, Membership.id == Prize.membership_id)
        .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
        .where(Prize.activity_id == activity.id)
        .order_by(Prize.id)
    ).all()
    lines = [
        PrizeLine(
            prize, masked(PiiField.NAME, name_enc), address_view(prize.address_enc, reveal=reveal)
        )
        for prize, name_enc in rows
    ]
    if reveal:
        audit.record(
            session,
            actor=actor,
            action="pii.unmask",
            org_id=activity.org_id,
            subject_type="activity",
            subject_id=activity.id,
            field="prize_address",
            reason="prize shipping",
            details={"prizes": [line.prize.id for line in lines]},
        )
    return lines


def ship(
    session: Session,
    *,
    actor: Actor,
    activity_id: int,
    prize_id: int,
    courier_company: str | None = None,
    courier_no: str | None = None,
) -> Prize:
    """Mark a claimed prize shipped, with the courier and tracking number when given (the
    console asks for both; the member's wallet shows them)."""
    activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
    prize = session.get(Prize, prize_id)
    if prize is None or prize.activity_id != activity.id:
        raise NotFound(BenefitsError.PRIZE_NOT_FOUND, f"prize {prize_id} not found")
    moved = session.execute(
        update(Prize)
        .where(Prize.id == prize.id, Prize.status == PrizeStatus.TO_SHIP)
        .values(
            status=PrizeStatus.SHIPPED,
            courier_company=courier_company,
            courier_no=courier_no,
            shipped_at=now(),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(prize)
    if rowcount(moved) != 1:
        raise Conflict(BenefitsError.NOT_SHIPPABLE, f"the prize is {prize.status}")
    audit.record(
        session,
        actor=actor,
        action="benefits.ship_prize",
        org_id=activity.org_id,
        subject_type="prize",
        subject_id=prize.id,
        details={"courier_company": courier_company, "courier_no": courier_no},
    )
    return prize

"""The opening minute of a voucher grab as operators watch it: claims per second, what is
left of each stock, the coupons still being sent, waiting for a paused stock, sent, and
what failed.

Every figure is read without visiting the grab's whole history, however many claims it
holds: the stocks' ``claimed`` counts what they hold; the claims still ``sending``,
``waiting`` and ``failed`` are ranges of the ``(activity_id, state, claimed_at)`` index, and so is
the last minute's claims (one range per state), grouped by second in SQL.
:func:`claims_by_org` does count the grab's claims (one range of the activity's), so the
console reads it when its page loads, not in the figures it refreshes every two seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from gonghui.activities.models import Activity
from gonghui.activities.voucher_grab.claims import SEND_HOLD_S
from gonghui.activities.voucher_grab.models import ClaimState, VoucherClaim
from gonghui.activities.voucher_grab.stocks import list_stocks
from gonghui.clock import now
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, get_scoped

WINDOW_S = 60


@dataclass(frozen=True)
class StockFigures:
    id: int
    name: str
    status: str
    max_coupons: int
    claimed: int
    left: int
    last_error: str | None


@dataclass(frozen=True)
class OpeningMinute:
    at: datetime
    # Claims made in each of the last WINDOW_S seconds, oldest first (the current second last).
    claims_per_second: list[int]
    # Claims per second over the last ten seconds.
    claims_rate: float
    stocks: list[StockFigures]
    left: int
    # Coupons claimed in all, and their face value (cents).
    claimed: int
    claimed_cents: int
    # Claims whose coupon is being sent (the send backlog), of which ``stuck`` ran out of
    # attempts (the send task is dead; operators requeue it).
    sending: int
    stuck: int
    # Claims whose send waits for its paused stock to restart (voucher_grab.waiting).
    waiting: int
    # Coupons WeChat Pay sent (spent ones included); claims it refused (given back).
    sent: int
    failed: int
    # While claims keep the hot writer busy, a send waits at most this long (claims.py).
    send_hold_s: float


def _second(session: Session) -> ColumnElement[str]:
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%dT%H:%M:%S", VoucherClaim.claimed_at)
    utc = func.timezone("UTC", VoucherClaim.claimed_at)
    return func.to_char(func.date_trunc("second", utc), 'YYYY-MM-DD"T"HH24:MI:SS')


def opening_minute(session: Session, *, actor: Actor, activity_id: int) -> OpeningMinute:
    """The figures of a grab the actor manages (404 otherwise); see the module."""
    activity = get_scoped(session, Activity, activity_id, actor, Permission.ACTIVITIES_MANAGE)
    at = now().replace(microsecond=0)
    since = at - timedelta(seconds=WINDOW_S - 1)
    held = list_stocks(session, activity_id=activity.id)
    stocks = [
        StockFigures(
            id=s.id,
            name=s.name,
            status=str(s.status),
            max_coupons=s.max_coupons,
            claimed=s.claimed,
            left=max(s.max_coupons - s.claimed, 0),
            last_error=s.last_error,
        )
        for s in held
    ]
    pending: dict[str, tuple[int, int]] = {
        str(state): (int(n), int(stuck))
        for state, n, stuck in session.execute(
            select(VoucherClaim.state, func.count(), func.count(VoucherClaim.last_error))
            .where(
                VoucherClaim.activity_id == activity.id,
                VoucherClaim.state.in_([ClaimState.SENDING, ClaimState.WAITING, ClaimState.FAILED]),
            )
            .group_by(VoucherClaim.state)
        )
    }
    second = _second(session).label("second")
    per_second = dict.fromkeys(range(WINDOW_S), 0)
    for stamp, n in session.execute(
        select(second, func.count())
        .where(
            VoucherClaim.activity_id == activity.id,
            VoucherClaim.state.in_(list(ClaimState)),
            VoucherClaim.claimed_at >= since,
        )
        .group_by(second)
    ):
        offset = int(
            (datetime.fromisoformat(str(stamp)).replace(tzinfo=UTC) - since).total_seconds()
        )
        if offset in per_second:
            per_second[offset] += int(n)
    series = [per_second[k] for k in range(WINDOW_S)]
    sending, stuck = pending.get(ClaimState.SENDING, (0, 0))
    waiting = pending.get(ClaimState.WAITING, (0, 0))[0]
    return OpeningMinute(
        at=at,
        claims_per_second=series,
        claims_rate=round(sum(series[-10:]) / 10, 1),
        stocks=stocks,
        left=sum(s.left for s in stocks),
        claimed=sum(s.claimed for s in held),
        claimed_cents=sum(s.claimed * s.coupon_amount_cents for s in held),
        sending=sending,
        stuck=stuck,
        waiting=waiting,
        sent=sum(s.claimed for s in held) - sending - waiting,
        failed=pending.get(ClaimState.FAILED, (0, 0))[0],
        send_hold_s=SEND_HOLD_S,
    )


def claims_by_org(session: Session, *, actor: Actor, activity_id: int) -> list[dict[str, Any]]:
    """Per member's union (as claimed): claims, members claiming and coupons sent (spent
    ones included), most claims first; as the lottery's draws by org."""
    activity = get_scoped(session, Activity, activity_id, actor, Permission.ACTIVITIES_MANAGE)
    rows = session.execute(
        select(
            Org.id,
            Org.name,
            func.count(VoucherClaim.id),
            func.count(distinct(VoucherClaim.membership_id)),
            func.count(VoucherClaim.id).filter(
                VoucherClaim.state.in_([ClaimState.SENT, ClaimState.USED])
            ),
        )
        .join(Org, Org.id == VoucherClaim.org_id)
        .where(VoucherClaim.activity_id == activity.id)
        .group_by(Org.id, Org.name)
        .order_by(func.count(VoucherClaim.id).desc(), Org.id)
    )
    return [
        {"org_id": oid, "org_name": name, "claims": int(c), "members": int(m), "sent": int(n)}
        for oid, name, c, m, n in rows
    ]

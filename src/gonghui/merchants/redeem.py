"""A cashier redeems a member's voucher from the code the member shows, once.

The rules, in order: the code is ours and fresh (:mod:`.codes`); the voucher is the union's
own (issued by an activity) and this merchant may take it: one of the merchants the voucher
names (copied from its prize when issued, read with the voucher's own row), or, when it
names none, any merchant whose org lies within the activity's org subtree; then the
voucher's own rules (validity, threshold, not yet spent: see
:func:`gonghui.benefits.service.redeem_voucher`). The voucher moves to ``redeemed`` with one
conditional UPDATE and its redemption row has a unique voucher id, so however many tills
race for one voucher, one wins and the rest are told it is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import ratelimit
from gonghui.activities.models import Activity
from gonghui.benefits import service as benefits
from gonghui.benefits.errors import BenefitsError
from gonghui.benefits.models import Voucher, VoucherStatus
from gonghui.errors import Conflict, InvalidInput, RateLimited
from gonghui.merchants import codes
from gonghui.merchants.errors import MerchantsError
from gonghui.merchants.models import Cashier, Redemption
from gonghui.merchants.service import Seat, seat
from gonghui.orgs.models import Org
from gonghui.tenancy import path_within

# Attempts per cashier (refused ones count too): far above a till's pace, far below guessing.
ATTEMPTS_PER_MINUTE = 60


@dataclass(frozen=True)
class RedemptionLine:
    id: int
    voucher_id: int
    voucher_code: str
    voucher_name: str
    value_cents: int
    order_cents: int
    cashier_name: str
    at: datetime


def redeem(session: Session, *, user_id: int, code: str, order_cents: int) -> RedemptionLine:
    """Redeem at the till of ``user_id``'s cashier account (see :func:`.service.seat`)."""
    # Counted first, in a transaction of its own, before ``session`` takes SQLite's write
    # lock; a refused attempt counts too.
    limit = ratelimit.hit(f"cashier:{user_id}", limit=ATTEMPTS_PER_MINUTE, window_s=60)
    if not limit.allowed:
        raise RateLimited(
            MerchantsError.RATE_LIMITED,
            "too many redemptions at this till; wait a moment",
            retry_after_s=limit.retry_after_s,
        )
    till = seat(session, user_id=user_id)
    voucher_id = codes.read(code)
    voucher = session.get(Voucher, voucher_id)
    if voucher is None:
        raise InvalidInput(MerchantsError.CODE_INVALID, "this is not a voucher code of ours")
    _check_accepted(session, voucher, till)
    benefits.redeem_voucher(
        session,
        voucher=voucher,
        order_cents=order_cents,
        source="merchant",
        details={"merchant_id": till.merchant_id, "cashier_id": till.cashier_id},
    )
    redemption = Redemption(
        voucher_id=voucher.id,
        merchant_id=till.merchant_id,
        cashier_id=till.cashier_id,
        membership_id=voucher.membership_id,
        value_cents=voucher.value_cents,
        order_cents=order_cents,
    )
    session.add(redemption)
    session.flush()
    return RedemptionLine(
        id=redemption.id,
        voucher_id=voucher.id,
        voucher_code=voucher.code,
        voucher_name=voucher.name,
        value_cents=redemption.value_cents,
        order_cents=order_cents,
        cashier_name=till.cashier_name,
        at=redemption.at,
    )


def _check_accepted(session: Session, voucher: Voucher, till: Seat) -> None:
    """The voucher is the union's own and this merchant may take it: one it names, or,
    when it names none, any merchant of the issuing activity's org subtree."""
    if voucher.activity_id is None:
        raise Conflict(MerchantsError.NOT_ACCEPTED, "this merchant does not take this voucher")
    if voucher.merchant_ids:
        if till.merchant_id not in voucher.merchant_ids:
            raise Conflict(
                MerchantsError.NOT_ACCEPTED,
                "this voucher is limited to named merchants, and this is not one of them",
            )
        return
    issuer_path = session.scalar(
        select(Org.path)
        .join(Activity, Activity.org_id == Org.id)
        .where(Activity.id == voucher.activity_id)
    )
    if issuer_path is None or not path_within(till.org_path, issuer_path):
        raise Conflict(MerchantsError.NOT_ACCEPTED, "this merchant does not take this voucher")


def member_code(session: Session, *, membership_id: int, voucher_id: int) -> codes.PresentedCode:
    """A fresh code for the member to show at a till, for a voucher of theirs that a
    merchant may take (issued by an activity, not yet spent)."""
    voucher = benefits.member_voucher(session, membership_id, voucher_id)
    if voucher.status != VoucherStatus.ISSUED or voucher.activity_id is None:
        raise Conflict(BenefitsError.VOUCHER_NOT_REDEEMABLE, f"the voucher is {voucher.status}")
    return codes.present(voucher_id=voucher.id)


def redemptions(
    session: Session,
    *,
    merchant_id: int,
    start: datetime,
    end: datetime,
    limit: int | None = None,
) -> list[RedemptionLine]:
    """The merchant's redemptions in [start, end), newest first."""
    stmt = (
        select(
            Redemption.id,
            Redemption.voucher_id,
            Voucher.code,
            Voucher.name,
            Redemption.value_cents,
            Redemption.order_cents,
            Cashier.name,
            Redemption.at,
        )
        .join(Voucher, Voucher.id == Redemption.voucher_id)
        .join(Cashier, Cashier.id == Redemption.cashier_id)
        .where(Redemption.merchant_id == merchant_id, Redemption.at >= start, Redemption.at < end)
        .order_by(Redemption.at.desc(), Redemption.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [RedemptionLine(*row) for row in session.execute(stmt)]

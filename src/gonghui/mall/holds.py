"""What an order holds, taken at checkout and given back exactly once.

- **Stock**: one conditional UPDATE per SKU (``stock >= quantity``), in SKU order so that
  concurrent writers (PostgreSQL) lock the rows one way round: no oversell.
- **Subsidy**: a share of the goods paid from a mall sale's budget (``charge_budget``'s
  conditional UPDATE: never overrun), within the member's cap for the month (a counter of
  cents, ``subsidy:<YYYY-MM>``), with a ledger row.
- **Voucher**: one of the member's wallet vouchers, redeemed once (its ledger row).

:func:`release` gives all three back. Its callers call it only after moving the order
out of a holding state by a conditional UPDATE, so it runs once per order.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.models import Activity
from gonghui.activities.schemas import MallRules
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerAction, LedgerKind, Voucher
from gonghui.db import rowcount
from gonghui.errors import Conflict
from gonghui.mall.errors import MallError
from gonghui.mall.models import Order, OrderLine, Sku


def take_stock(session: Session, lines: Sequence[tuple[int, int]]) -> None:
    """Take ``quantity`` of each ``(sku id, quantity)``; raise if any is short (the
    caller's transaction or savepoint then gives back what was taken)."""
    for sku_id, quantity in sorted(lines):
        taken = session.execute(
            update(Sku)
            .where(Sku.id == sku_id, Sku.stock >= quantity)
            .values(stock=Sku.stock - quantity, sold=Sku.sold + quantity)
            .execution_options(synchronize_session=False)
        )
        if rowcount(taken) != 1:
            raise Conflict(
                MallError.OUT_OF_STOCK, "not enough left of one of the items", {"sku_id": sku_id}
            )


def _scope(month: str) -> str:
    return f"subsidy:{month}"


def take_subsidy(
    session: Session,
    *,
    member: MemberInfo,
    activity: Activity,
    goods_cents: int,
    month: str,
    out_trade_no: str,
) -> int:
    """The union's share of ``goods_cents`` under the sale's rules, what is left of the
    member's cap this month and of the budget, and less than the goods (the member pays
    at least a cent); charged, with its ledger row. 0 when nothing is left."""
    rules = MallRules.model_validate(activity.config["mall"])
    scope = _scope(month)
    cap = rules.member_cap_cents_per_month
    left = counters.remaining_many(
        session, activity_id=activity.id, members=[member.membership_id], scopes={scope: cap}
    )[member.membership_id][scope]
    budget = benefits.budget_left(session, activity_id=activity.id)
    amount = min(goods_cents * rules.subsidy_percent // 100, left, goods_cents - 1)
    if budget.cents is not None:
        amount = min(amount, budget.cents)
    if amount <= 0:
        return 0
    if not counters.take_amount(
        session,
        activity_id=activity.id,
        membership_id=member.membership_id,
        scope=scope,
        granted=cap,
        amount=amount,
    ) or not benefits.charge_budget(session, activity_id=activity.id, cents=amount):
        # Another writer took some meanwhile (PostgreSQL); the savepoint undoes ours.
        raise Conflict(MallError.TRY_AGAIN, "the subsidy changed while you checked out; retry")
    benefits.record_entry(
        session,
        membership_id=member.membership_id,
        activity_id=activity.id,
        kind=LedgerKind.SUBSIDY,
        action=LedgerAction.ISSUE,
        amount=amount,
        source="mall.checkout",
        details={"out_trade_no": out_trade_no, "month": month},
    )
    return amount


def voucher_share(voucher: Voucher, *, goods_cents: int, subsidy_cents: int) -> int:
    """What the voucher takes off the order: its value, but never the last cent."""
    if goods_cents < voucher.threshold_cents:
        raise Conflict(
            MallError.VOUCHER_UNUSABLE,
            f"the voucher needs an order of at least {voucher.threshold_cents} cents",
        )
    share = min(voucher.value_cents, goods_cents - subsidy_cents - 1)
    if share <= 0:
        raise Conflict(MallError.VOUCHER_UNUSABLE, "nothing is left to pay with the voucher")
    return share


def release(session: Session, order: Order, *, source: str) -> None:
    """Give back the order's stock, subsidy and voucher (see the module: once per order)."""
    lines = session.execute(
        select(OrderLine.sku_id, OrderLine.quantity)
        .where(OrderLine.order_id == order.id)
        .order_by(OrderLine.sku_id)
    ).all()
    for sku_id, quantity in lines:
        session.execute(
            update(Sku)
            .where(Sku.id == sku_id)
            .values(stock=Sku.stock + quantity, sold=Sku.sold - quantity)
            .execution_options(synchronize_session=False)
        )
    details = {"order_id": order.id, "out_trade_no": order.out_trade_no}
    if order.subsidy_cents and order.activity_id is not None and order.subsidy_month:
        counters.give_back_amount(
            session,
            activity_id=order.activity_id,
            membership_id=order.membership_id,
            scope=_scope(order.subsidy_month),
            amount=order.subsidy_cents,
        )
        benefits.release_budget(session, activity_id=order.activity_id, cents=order.subsidy_cents)
        benefits.record_entry(
            session,
            membership_id=order.membership_id,
            activity_id=order.activity_id,
            kind=LedgerKind.SUBSIDY,
            action=LedgerAction.REVOKE,
            amount=-order.subsidy_cents,
            source=source,
            details=details,
        )
    if order.voucher_id is not None:
        benefits.reinstate_voucher(
            session, voucher_id=order.voucher_id, source=source, details=details
        )

"""What an order holds, taken at checkout and given back exactly once.

- **Stock**: a conditional UPDATE per SKU (``stock >= quantity``), in SKU order so that
  concurrent writers (PostgreSQL) lock the rows one way round: no oversell.
- **Subsidy**: a share of the goods (:func:`subsidy_share`) paid from a mall sale's budget
  (``charge_budget``'s conditional UPDATE: never overrun), within the member's cap for the
  month (a counter of cents, ``subsidy:<YYYY-MM>``), with a ledger row.
- **Voucher**: one of the member's wallet vouchers, redeemed once (its ledger row).

:func:`release` gives all three back. Its callers call it only after moving the order
out of a holding state by a conditional UPDATE, so it runs once per order.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.orm import Session

from gonghui.activities import counters
from gonghui.activities.schemas import MallRules
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerAction, LedgerKind, Voucher
from gonghui.db import rowcount
from gonghui.errors import Conflict
from gonghui.mall.errors import MallError
from gonghui.mall.models import Order, OrderLine, Sku


@cache
def _take_stock() -> Update:
    return (
        update(Sku)
        .where(Sku.id == bindparam("s"), Sku.stock >= bindparam("q"))
        .values(stock=Sku.stock - bindparam("q"), sold=Sku.sold + bindparam("q"))
    )


def take_stock(session: Session, units: dict[int, int]) -> list[int]:
    """Take the units of each SKU (SKU id → units), in SKU order; the SKUs that had not
    enough left (nothing is taken of those: the caller refuses, and its transaction or
    savepoint gives back the rest)."""
    connection = session.connection()
    return [
        sku_id
        for sku_id, quantity in sorted(units.items())
        if rowcount(connection.execute(_take_stock(), {"s": sku_id, "q": quantity})) != 1
    ]


def subsidy_scope(month: str) -> str:
    """The member's cap counter for ``month`` (``YYYY-MM``)."""
    return f"subsidy:{month}"


def subsidy_share(
    rules: MallRules, *, goods_cents: int, cap_left_cents: int, budget_left_cents: int | None
) -> int:
    """The union's share of ``goods_cents`` under the sale's rules, within what is left of
    the member's cap this month and of the budget (None: no limit), and less than the
    goods (the member pays at least a cent); 0 when nothing is left."""
    amount = min(goods_cents * rules.subsidy_percent // 100, cap_left_cents, goods_cents - 1)
    if budget_left_cents is not None:
        amount = min(amount, budget_left_cents)
    return max(amount, 0)


def voucher_share(voucher: Voucher, *, goods_cents: int, subsidy_cents: int) -> int:
    """What the voucher takes off the order: its value, but never the last cent."""
    if voucher.merchant_ids:
        raise Conflict(MallError.VOUCHER_UNUSABLE, "the voucher is limited to named merchants")
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
            scope=subsidy_scope(order.subsidy_month),
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

"""Sales for the union's poverty-alleviation (消费帮扶) report: by assistance region (the
products' origin) and by union (the buyers'), as XLSX. Orders count once paid, and stop
counting when refunded; an operator sees the orders of the sellers in their subtree."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from gonghui.cells import safe_row
from gonghui.mall.models import Order, OrderLine, OrderState
from gonghui.mall.orders import MANAGE
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, scoped

SOLD = [
    OrderState.PAID,
    OrderState.SHIPPED,
    OrderState.RECEIVED,
    OrderState.COMPLETED,
    OrderState.REFUND_REQUESTED,
    OrderState.REFUNDING,
    OrderState.REFUND_FAILED,
]
BY_REGION = ["帮扶地区 region", "订单数 orders", "件数 units", "商品金额(分) goods_cents"]
BY_ORG = [
    "工会代码 org_code",
    "工会 org",
    "订单数 orders",
    "商品金额(分) goods_cents",
    "工会补贴(分) subsidy_cents",
    "优惠券(分) voucher_cents",
    "会员实付(分) paid_cents",
]


def _sold(actor: Actor, start: datetime | None, end: datetime | None) -> Select[Any]:
    orders = scoped(select(Order.id), actor, MANAGE).where(
        Order.state.in_(SOLD),
        # A payment that came after the order was cancelled is refunded, not a sale.
        or_(Order.refund_from.is_(None), Order.refund_from != OrderState.CANCELLED),
    )
    if start is not None:
        orders = orders.where(Order.paid_at >= start)
    if end is not None:
        orders = orders.where(Order.paid_at < end)
    return orders


def by_region(
    session: Session, *, actor: Actor, start: datetime | None = None, end: datetime | None = None
) -> list[list[object]]:
    orders = _sold(actor, start, end)
    rows = session.execute(
        select(
            OrderLine.origin_region,
            func.count(func.distinct(OrderLine.order_id)),
            func.sum(OrderLine.quantity),
            func.sum(OrderLine.amount_cents),
        )
        .where(OrderLine.order_id.in_(orders))
        .group_by(OrderLine.origin_region)
        .order_by(OrderLine.origin_region)
    )
    return [list(row) for row in rows]


def by_org(
    session: Session, *, actor: Actor, start: datetime | None = None, end: datetime | None = None
) -> list[list[object]]:
    orders = _sold(actor, start, end)
    rows = session.execute(
        select(
            Org.code,
            Org.name,
            func.count(Order.id),
            func.sum(Order.goods_cents),
            func.sum(Order.subsidy_cents),
            func.sum(Order.voucher_cents),
            func.sum(Order.total_cents),
        )
        .join(Org, Org.id == Order.member_org_id)
        .where(Order.id.in_(orders))
        .group_by(Org.code, Org.name)
        .order_by(Org.code)
    )
    return [list(row) for row in rows]


def sales_xlsx(
    session: Session, *, actor: Actor, start: datetime | None = None, end: datetime | None = None
) -> bytes:
    workbook = Workbook(write_only=True)
    for title, header, rows in (
        ("按帮扶地区", BY_REGION, by_region(session, actor=actor, start=start, end=end)),
        ("按工会", BY_ORG, by_org(session, actor=actor, start=start, end=end)),
    ):
        sheet = workbook.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append(safe_row(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()

"""Shipping an order (an operator enters the courier), the member confirming receipt (or
the sweep after ``mall_auto_receive_days``), and completion after
``mall_after_sale_days`` (no refund after that)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.mall.models import Order, OrderState
from gonghui.mall.orders import get_order, member_order, move, refuse_state
from gonghui.settings import get_settings
from gonghui.tenancy import Actor


def ship(
    session: Session, *, actor: Actor, order_id: int, courier_company: str, courier_no: str
) -> Order:
    order = get_order(session, actor=actor, order_id=order_id)
    instant = now()
    days = get_settings().mall_auto_receive_days
    if not move(
        session,
        order,
        from_={OrderState.PAID},
        to=OrderState.SHIPPED,
        shipped_at=instant,
        courier_company=courier_company,
        courier_no=courier_no,
        due_at=instant + timedelta(days=days),
    ):
        raise refuse_state(order, "shipped")
    audit.record(
        session,
        actor=actor,
        action="mall.ship",
        org_id=order.org_id,
        subject_type="mall_order",
        subject_id=order.id,
        details={"courier_company": courier_company, "courier_no": courier_no},
    )
    hooks.emit(
        session,
        org_id=order.org_id,
        event=hooks.OrgEvent.ORDER_SHIPPED,
        payload={
            "order_id": order.id,
            "membership_id": order.membership_id,
            "courier_company": courier_company,
            "courier_no": courier_no,
        },
    )
    return order


def _received(session: Session, order: Order) -> bool:
    instant = now()
    return move(
        session,
        order,
        from_={OrderState.SHIPPED},
        to=OrderState.RECEIVED,
        received_at=instant,
        due_at=instant + timedelta(days=get_settings().mall_after_sale_days),
    )


def confirm_receipt(session: Session, *, membership_id: int, order_id: int) -> Order:
    order = member_order(session, membership_id=membership_id, order_id=order_id)
    if not _received(session, order):
        raise refuse_state(order, "received")
    return order


def advance(session: Session, *, limit: int = 500) -> int:
    """Shipped orders past their due time are received; received ones past theirs are
    completed. How many moved."""
    instant = now()
    due = session.scalars(
        select(Order)
        .where(Order.state.in_([OrderState.SHIPPED, OrderState.RECEIVED]), Order.due_at <= instant)
        .order_by(Order.due_at)
        .limit(limit)
    ).all()
    moved = 0
    for order in due:
        if order.state == OrderState.SHIPPED:
            moved += _received(session, order)
        else:
            moved += move(
                session,
                order,
                from_={OrderState.RECEIVED},
                to=OrderState.COMPLETED,
                completed_at=instant,
                due_at=None,
            )
    return moved

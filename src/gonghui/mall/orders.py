"""Reading orders (members their own, operators those of their subtree's sellers) and
moving an order from one state to the next, once."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.benefits.addresses import address_view
from gonghui.db import rowcount
from gonghui.errors import Conflict, NotFound, PermissionDenied
from gonghui.mall.errors import MallError
from gonghui.mall.models import Order, OrderLine, OrderState
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, get_scoped, scoped

MANAGE = Permission.ACTIVITIES_MANAGE

_FIELDS = (
    "id",
    "org_id",
    "member_org_id",
    "goods_cents",
    "subsidy_cents",
    "voucher_cents",
    "total_cents",
    "activity_id",
    "voucher_id",
    "out_trade_no",
    "courier_company",
    "courier_no",
    "refund_reason",
    "out_refund_no",
    "refund_failure",
    "refund_error",
    "abnormal_refund",
    "refund_account",
)
LINE_FIELDS = (
    "sku_id",
    "product_id",
    "product_name",
    "sku_name",
    "origin_region",
    "price_cents",
    "quantity",
    "amount_cents",
)
_TIMES = (
    "due_at",
    "created_at",
    "paid_at",
    "shipped_at",
    "received_at",
    "completed_at",
    "cancelled_at",
    "refunded_at",
)


def order_view(
    session: Session, order: Order, *, reveal: bool = False, staff: bool = False
) -> dict[str, Any]:
    """The order as the API shows it (JSON-ready: the hot writer answers with it). What
    WeChat Pay said of a failed refund (e.g. the merchant's balance is short) is for
    operators (``staff``) only."""
    lines = session.scalars(
        select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
    )
    view = shaped_view(
        lambda name: getattr(order, name),
        address=address_view(order.address_enc, reveal=reveal),
        lines=[{name: getattr(line, name) for name in LINE_FIELDS} for line in lines],
    )
    if not staff:
        view["refund_error"] = None
    return view


def shaped_view(
    field: Callable[[str], Any], *, address: dict[str, str] | None, lines: list[dict[str, Any]]
) -> dict[str, Any]:
    """An order's view from its fields by name, its address as shown and its lines."""
    view: dict[str, Any] = {name: field(name) for name in _FIELDS}
    for name in _TIMES:
        at = field(name)
        view[name] = at.isoformat() if at is not None else None
    view["state"] = str(field("state"))
    refund_from = field("refund_from")
    view["refund_from"] = None if refund_from is None else str(refund_from)
    view["refund_attempt"] = field("refund_attempt") or 0
    view["address"] = address
    view["lines"] = lines
    return view


def move(
    session: Session,
    order: Order,
    *,
    from_: Collection[OrderState],
    to: OrderState,
    when: Collection[ColumnElement[bool]] = (),
    **values: Any,
) -> bool:
    """``order`` from one of ``from_`` to ``to`` (with ``values``), exactly once however
    many callers race: False if it was not in ``from_`` any more (or ``when`` no longer
    holds, e.g. the refund attempt it was about is over)."""
    moved = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.state.in_([str(s) for s in from_]), *when)
        .values(state=to, **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(order)
    return rowcount(moved) == 1


def audit_order(
    session: Session,
    *,
    actor: Actor,
    action: str,
    order: Order,
    details: dict[str, Any] | None = None,
) -> None:
    """An operator's action on ``order`` in the audit log (``mall.<action>``)."""
    audit.record(
        session,
        actor=actor,
        action=f"mall.{action}",
        org_id=order.org_id,
        subject_type="mall_order",
        subject_id=order.id,
        details=details,
    )


def refuse_state(order: Order, doing: str) -> Conflict:
    return Conflict(
        MallError.BAD_STATE,
        f"an order that is {order.state} cannot be {doing}",
        {"state": str(order.state)},
    )


# -- members -------------------------------------------------------------------------------


def member_order(session: Session, *, membership_id: int, order_id: int) -> Order:
    order = session.get(Order, order_id)
    if order is None or order.membership_id != membership_id:
        raise NotFound(MallError.ORDER_NOT_FOUND, f"order {order_id} not found")
    return order


def member_orders(
    session: Session, *, membership_id: int, before_id: int | None = None, limit: int = 20
) -> list[Order]:
    stmt = select(Order).where(Order.membership_id == membership_id)
    if before_id is not None:
        stmt = stmt.where(Order.id < before_id)
    return list(session.scalars(stmt.order_by(Order.id.desc()).limit(min(max(limit, 1), 100))))


# -- operators -------------------------------------------------------------------------------


def get_order(session: Session, *, actor: Actor, order_id: int) -> Order:
    return get_scoped(session, Order, order_id, actor, MANAGE)


def list_orders(
    session: Session,
    *,
    actor: Actor,
    state: OrderState | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Order]:
    stmt = scoped(select(Order), actor, MANAGE)
    if state is not None:
        stmt = stmt.where(Order.state == state)
    if before_id is not None:
        stmt = stmt.where(Order.id < before_id)
    return list(session.scalars(stmt.order_by(Order.id.desc()).limit(min(max(limit, 1), 200))))


def reveal_address(session: Session, *, actor: Actor, order: Order) -> None:
    """The operator may see the full address (``pii.unmask``); the look is audited."""
    org = session.get(Org, order.org_id)
    assert org is not None
    if not actor.can(Permission.PII_UNMASK, org.path):
        raise PermissionDenied("auth.forbidden", "revealing addresses needs pii.unmask")
    audit.record(
        session,
        actor=actor,
        action="pii.unmask",
        org_id=order.org_id,
        subject_type="mall_order",
        subject_id=order.id,
        field="order_address",
        reason="order shipping",
    )

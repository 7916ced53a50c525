"""Refunds: the member asks (paid or shipped orders), an operator approves or refuses,
the refund goes to WeChat Pay (a task, with the order's one ``out_refund_no``, so a retry
never refunds twice), and ``REFUND.SUCCESS`` (or a query when it is late) completes it:
``refunding → refunded``, the refund's ledger row and the stock, subsidy and voucher
given back, once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.audit import service as audit
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerAction, LedgerKind
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay
from gonghui.mall import holds
from gonghui.mall.models import Order, OrderState
from gonghui.mall.orders import get_order, member_order, move, refuse_state
from gonghui.payments import service as payments
from gonghui.tenancy import Actor

SEND_REFUND = "mall.send_refund"
REFUNDABLE = frozenset({OrderState.PAID, OrderState.SHIPPED})


def request_refund(session: Session, *, membership_id: int, order_id: int, reason: str) -> Order:
    order = member_order(session, membership_id=membership_id, order_id=order_id)
    was = order.state
    if was not in REFUNDABLE or not move(
        session,
        order,
        from_={was},
        to=OrderState.REFUND_REQUESTED,
        refund_from=was,
        refund_reason=reason,
    ):
        raise refuse_state(order, "refunded")
    return order


def _audit(session: Session, actor: Actor, action: str, order: Order) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"mall.{action}",
        org_id=order.org_id,
        subject_type="mall_order",
        subject_id=order.id,
    )


def approve(session: Session, *, actor: Actor, order_id: int) -> Order:
    order = get_order(session, actor=actor, order_id=order_id)
    if not move(
        session,
        order,
        from_={OrderState.REFUND_REQUESTED},
        to=OrderState.REFUNDING,
        out_refund_no=f"{order.out_trade_no}R",
        due_at=None,
    ):
        raise refuse_state(order, "refunded")
    tasks.defer(session, SEND_REFUND, order_id=order.id)
    _audit(session, actor, "approve_refund", order)
    return order


def refuse(session: Session, *, actor: Actor, order_id: int) -> Order:
    order = get_order(session, actor=actor, order_id=order_id)
    back = order.refund_from or OrderState.PAID
    if not move(session, order, from_={OrderState.REFUND_REQUESTED}, to=back, refund_from=None):
        raise refuse_state(order, "refused a refund")
    _audit(session, actor, "refuse_refund", order)
    return order


def _dead(args: dict[str, Any], error: str) -> None:
    with unit_of_work() as session:
        order = session.get(Order, int(args["order_id"]))
        if order is not None:
            order.last_error = error[:300]


@tasks.task(SEND_REFUND, max_attempts=30, on_dead=_dead)
def send_refund(order_id: int) -> None:
    """Ask WeChat Pay to refund the order's whole payment (once per ``out_refund_no``)."""
    with unit_of_work(read_only=True) as session:
        order = session.get(Order, order_id)
        if order is None or order.state != OrderState.REFUNDING or order.refund_id:
            return
        request = {
            "out_trade_no": order.out_trade_no,
            "out_refund_no": order.out_refund_no,
            "reason": (order.refund_reason or "")[:80],
            "notify_url": payments.notify_url(),
            "amount": {"refund": order.total_cents, "total": order.total_cents, "currency": "CNY"},
        }
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    try:
        answer = client.call("POST", "/v3/refund/domestic/refunds", request)
    except wechatpay.WechatPayRefused as exc:
        # Refused for good (e.g. the merchant's balance): an operator sees why.
        with unit_of_work() as session:
            row = session.get(Order, order_id)
            assert row is not None
            row.last_error = exc.message[:300]
        return
    except wechatpay.WechatPayUnavailable as exc:
        raise tasks.Retry(exc.message) from exc
    with unit_of_work() as session:
        row = session.get(Order, order_id)
        assert row is not None
        row.refund_id = str(answer.get("refund_id", ""))[:32] or None
        if answer.get("status") == "SUCCESS":
            refunded(session, answer, source="wechatpay.refund")


def refunded(
    session: Session, refund: dict[str, Any], *, source: str, notification_id: str = ""
) -> Order | None:
    """WeChat Pay says the refund reached the member: ``refunding → refunded``, the ledger
    row and the holds given back, once. A refund that does not match the order changes
    nothing but its ``last_error``."""
    out_refund_no = str(refund.get("out_refund_no", ""))
    order = session.scalar(select(Order).where(Order.out_refund_no == out_refund_no))
    status = refund.get("refund_status") or refund.get("status")
    if order is None or status != "SUCCESS":
        return order
    if (refund.get("amount") or {}).get("refund") != order.total_cents:
        order.last_error = "the refund does not match the order's payment"
        return order
    if move(
        session, order, from_={OrderState.REFUNDING}, to=OrderState.REFUNDED, refunded_at=now()
    ):
        benefits.record_entry(
            session,
            membership_id=order.membership_id,
            activity_id=order.activity_id,
            kind=LedgerKind.PAYMENT,
            action=LedgerAction.REFUND,
            amount=-order.total_cents,
            source=source,
            details={
                "order_id": order.id,
                "out_trade_no": order.out_trade_no,
                "out_refund_no": out_refund_no,
                "refund_id": str(refund.get("refund_id", ""))[:32],
                "notification_id": notification_id,
            },
        )
        holds.release(session, order, source="mall.refund")
    return order


@payments.handles("REFUND.SUCCESS")
def refund_success(session: Session, notification: wechatpay.Notification) -> None:
    refunded(
        session,
        notification.resource,
        source="wechatpay.refund_success",
        notification_id=notification.id,
    )


def check_refund(order_id: int) -> None:
    """Ask WeChat Pay about a refund whose notification is late."""
    with unit_of_work(read_only=True) as session:
        order = session.get(Order, order_id)
        if order is None or order.state != OrderState.REFUNDING or not order.refund_id:
            return
        out_refund_no = order.out_refund_no
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    found = client.call("GET", f"/v3/refund/domestic/refunds/{out_refund_no}")
    with unit_of_work() as session:
        refunded(session, found, source="wechatpay.refund_query")

"""Paying an order through WeChat Pay JSAPI, and learning that it was paid.

- :func:`prepare_payment`: the order is placed at WeChat Pay once (``out_trade_no`` is
  ours, so asking again answers the same ``prepay_id``), outside any transaction, and the
  page gets the signed ``wx.requestPayment`` parameters.
- ``TRANSACTION.SUCCESS`` (:mod:`gonghui.payments` verifies, decrypts and de-duplicates
  it) and a query for a notification that is late both end in :func:`mark_paid`: the
  amount, merchant and app are checked against our order, and ``unpaid → paid`` with the
  payment's ledger row happens once. A payment for an order cancelled meanwhile is kept in
  the ledger too and refunded at once (:func:`.refunds.refund_late_payment`).
- :func:`close_unpaid` (the member cancels; the sweep closes it after the timeout): a
  placed order is asked for first (paid after all: it is paid) and closed at WeChat Pay,
  so no payment can follow; then ``unpaid → cancelled`` gives back what it held. A close
  and a placing that race end the same way: the placing records its ``prepay_id`` only on
  an order still unpaid (else it closes what it placed and refuses), and a close that read
  the order unplaced cancels it only if it still is (else it closes it as a placed one).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerAction, LedgerKind
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.errors import Conflict
from gonghui.integrations import wechatpay
from gonghui.mall import holds, refunds
from gonghui.mall.errors import MallError
from gonghui.mall.models import Order, OrderState
from gonghui.mall.orders import member_order, move, order_view, refuse_state
from gonghui.payments import service as payments

log = logging.getLogger("gonghui.mall")

_DESCRIPTION_CHARS = 127


def _client() -> wechatpay.WechatPayClient:
    return wechatpay.WechatPayClient(wechatpay.configured_merchant())


def prepare_payment(*, membership_id: int, order_id: int) -> dict[str, str]:
    """The ``wx.requestPayment`` parameters of the member's unpaid order."""
    with unit_of_work(read_only=True) as session:
        order = member_order(session, membership_id=membership_id, order_id=order_id)
        if order.state != OrderState.UNPAID:
            raise refuse_state(order, "paid")
        if order.due_at is not None and order.due_at <= now():
            raise Conflict(MallError.BAD_STATE, "the time to pay this order is over")
        assert order.appid is not None
        assert order.openid is not None
        assert order.due_at is not None
        prepay_id, appid = order.prepay_id, order.appid
        request = {
            "appid": order.appid,
            "description": f"助农商城订单 {order.id}"[:_DESCRIPTION_CHARS],
            "out_trade_no": order.out_trade_no,
            "time_expire": wechatpay.wechat_time(order.due_at),
            "notify_url": payments.notify_url(),
            "amount": {"total": order.total_cents, "currency": "CNY"},
            "payer": {"openid": order.openid},
        }
    client = _client()
    if prepay_id is None:
        request["mchid"] = client.merchant.mchid
        placed = client.call("POST", "/v3/pay/transactions/jsapi", request)
        prepay_id = str(placed["prepay_id"])
        with unit_of_work() as session:
            recorded = session.execute(
                update(Order)
                .where(
                    Order.id == order_id,
                    Order.state == OrderState.UNPAID,
                    Order.prepay_id.is_(None),
                )
                .values(prepay_id=prepay_id)
            )
            now_as = session.get(Order, order_id)
            assert now_as is not None
            unpaid = rowcount(recorded) == 1 or now_as.state == OrderState.UNPAID
            refusal = None if unpaid else refuse_state(now_as, "paid")
        if refusal is not None:
            # Cancelled while it was being placed, by a close that saw it unplaced: close
            # it at WeChat Pay now, so that no payment can follow.
            _close_at_wechatpay(client, str(request["out_trade_no"]))
            raise refusal
    return wechatpay.jsapi_pay_params(client.merchant, appid=appid, prepay_id=prepay_id)


def _close_at_wechatpay(client: wechatpay.WechatPayClient, out_trade_no: str) -> bool:
    """Close the order at WeChat Pay; False if it was paid first (``ORDERPAID``)."""
    try:
        client.call(
            "POST",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            {"mchid": client.merchant.mchid},
        )
    except wechatpay.WechatPayRefused as exc:
        if (exc.details or {}).get("code") != "ORDERPAID":
            raise
        return False
    return True


def mark_paid(
    session: Session, transaction: dict[str, Any], *, source: str, notification_id: str = ""
) -> Order | None:
    """WeChat Pay says (notification or query) the order was paid: ``unpaid → paid`` and
    the payment's ledger row, once. A transaction that does not match our order (amount,
    merchant, app) changes nothing but the order's ``last_error``."""
    out_trade_no = str(transaction.get("out_trade_no", ""))
    order = session.scalar(select(Order).where(Order.out_trade_no == out_trade_no))
    if order is None or transaction.get("trade_state") not in ("SUCCESS", "REFUND"):
        return order
    amount = transaction.get("amount") or {}
    mchid = wechatpay.configured_merchant().mchid
    if (
        amount.get("total") != order.total_cents
        or transaction.get("mchid") != mchid
        or transaction.get("appid") != order.appid
    ):
        log.error(
            "a WeChat Pay transaction does not match its order",
            extra={"fields": {"order": order.id}},
        )
        order.last_error = f"paid transaction does not match the order: {amount.get('total')} cents"
        return order
    transaction_id = str(transaction.get("transaction_id", ""))[:32]
    # When WeChat Pay took it (as its bill counts the day), not when we heard.
    paid_at = wechatpay.parse_wechat_time(transaction.get("success_time")) or now()
    if move(
        session,
        order,
        from_={OrderState.UNPAID},
        to=OrderState.PAID,
        paid_at=paid_at,
        transaction_id=transaction_id,
        due_at=None,
    ) or refunds.refund_late_payment(
        session, order, transaction_id=transaction_id, paid_at=paid_at
    ):
        # Paid, or paid after it was cancelled (a payment that raced the close at WeChat
        # Pay, or the member paying as the order was cancelled): the payment is in the
        # ledger either way, and the second is refunded at once.
        benefits.record_entry(
            session,
            membership_id=order.membership_id,
            activity_id=order.activity_id,
            kind=LedgerKind.PAYMENT,
            action=LedgerAction.PAY,
            amount=order.total_cents,
            source=source,
            details={
                "order_id": order.id,
                "out_trade_no": order.out_trade_no,
                "transaction_id": transaction_id,
                "notification_id": notification_id,
            },
        )
        if order.state == OrderState.PAID:
            hooks.emit(
                session,
                org_id=order.org_id,
                event=hooks.OrgEvent.ORDER_PAID,
                payload={
                    "membership_id": order.membership_id,
                    "activity_id": order.activity_id,
                    "order_id": order.id,
                    "total_cents": order.total_cents,
                    "paid_at": paid_at,
                },
            )
        if order.state == OrderState.REFUNDING:
            log.warning(
                "a cancelled order was paid: refunding it", extra={"fields": {"order": order.id}}
            )
    return order


@payments.handles("TRANSACTION.SUCCESS")
def transaction_success(session: Session, notification: wechatpay.Notification) -> None:
    mark_paid(
        session,
        notification.resource,
        source="wechatpay.transaction_success",
        notification_id=notification.id,
    )


def query(out_trade_no: str) -> dict[str, Any] | None:
    """The order as WeChat Pay has it; None if it was never placed there."""
    client = _client()
    try:
        return client.call(
            "GET",
            f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={client.merchant.mchid}",
        )
    except wechatpay.WechatPayRefused as exc:
        if (exc.details or {}).get("code") == "ORDER_NOT_EXIST":
            return None
        raise


def check_payment(order_id: int) -> OrderState:
    """Ask WeChat Pay about an unpaid order whose notification is late; its state after."""
    with unit_of_work(read_only=True) as session:
        order = session.get(Order, order_id)
        if order is None or order.state != OrderState.UNPAID or order.prepay_id is None:
            return order.state if order is not None else OrderState.CANCELLED
        out_trade_no = order.out_trade_no
    found = query(out_trade_no)
    with unit_of_work() as session:
        paid = mark_paid(session, found or {}, source="wechatpay.query")
        return paid.state if paid is not None else OrderState.UNPAID


def close_unpaid(order_id: int, *, source: str) -> OrderState:
    """Close an unpaid order and give back what it held (see the module); its state after
    (``paid`` when it turned out to be paid)."""
    with unit_of_work(read_only=True) as session:
        order = session.get(Order, order_id)
        assert order is not None
        if order.state != OrderState.UNPAID:
            return order.state
        placed, out_trade_no = order.prepay_id is not None, order.out_trade_no
    if placed:
        found = query(out_trade_no)
        if found is not None and found.get("trade_state") not in ("SUCCESS", "REFUND"):
            if not _close_at_wechatpay(_client(), out_trade_no):
                found = query(out_trade_no)  # paid just now
        if found is not None and found.get("trade_state") in ("SUCCESS", "REFUND"):
            with unit_of_work() as session:
                paid = mark_paid(session, found, source="wechatpay.query")
                assert paid is not None
                return paid.state
    with unit_of_work() as session:
        order = session.get(Order, order_id)
        assert order is not None
        moved = move(
            session,
            order,
            from_={OrderState.UNPAID},
            to=OrderState.CANCELLED,
            # Unplaced as read: still unplaced (or placed meanwhile, see below).
            when=() if placed else (Order.prepay_id.is_(None),),
            cancelled_at=now(),
            due_at=None,
        )
        if moved:
            holds.release(session, order, source=source)
        state, placed_meanwhile = order.state, not moved and order.state == OrderState.UNPAID
    if placed_meanwhile:
        # Placed at WeChat Pay since it was read: closed there first, as any placed one.
        return close_unpaid(order_id, source=source)
    return state


def cancel(*, membership_id: int, order_id: int) -> dict[str, Any]:
    """The member cancels their unpaid order (closed at WeChat Pay, its holds given back);
    the order as the API shows it. One paid meanwhile stays paid (refused)."""
    with unit_of_work(read_only=True) as session:
        order = member_order(session, membership_id=membership_id, order_id=order_id)
        if order.state != OrderState.UNPAID:
            raise refuse_state(order, "cancelled")
    close_unpaid(order_id, source="mall.cancel")
    with unit_of_work(read_only=True) as session:
        order = member_order(session, membership_id=membership_id, order_id=order_id)
        if order.state != OrderState.CANCELLED:
            raise refuse_state(order, "cancelled")
        return order_view(session, order)

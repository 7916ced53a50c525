"""Refunds: the member asks (paid or shipped orders), an operator approves or refuses, and
the refund goes to WeChat Pay as an attempt (a task sending the attempt's one
``out_refund_no``, so sending again never refunds twice). WeChat Pay's outcome, by
notification or by a query when that is late (:func:`record_outcome`), ends the attempt:

- ``REFUND.SUCCESS``: ``refunding → refunded``, the refund's ledger row and the stock,
  subsidy and voucher given back, once;
- ``REFUND.CLOSED``, ``REFUND.ABNORMAL``, or the request refused (4xx, e.g. the merchant's
  balance is short): ``refunding → refund_failed`` with the reason, where an operator goes
  on (:mod:`.refund_failures`).

A payment that arrives after its order was cancelled is refunded here too, at once
(:func:`refund_late_payment`). WeChat Pay's refunds, their query and their notifications
(``refund_status`` SUCCESS, CLOSED or ABNORMAL; a query may also answer PROCESSING):
https://pay.weixin.qq.com/doc/v3/merchant/4012791862."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerAction, LedgerKind
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay
from gonghui.mall import holds
from gonghui.mall.models import Order, OrderState, RefundFailure
from gonghui.mall.orders import audit_order, get_order, member_order, move, refuse_state
from gonghui.payments import service as payments
from gonghui.tenancy import Actor

log = logging.getLogger("gonghui.mall")

SEND_REFUND = "mall.send_refund"
REFUNDABLE = frozenset({OrderState.PAID, OrderState.SHIPPED})
# The reason WeChat Pay shows the payer for the refund of a payment that came too late.
LATE_PAYMENT_REASON = "订单已取消，付款原路退回"
# WeChat Pay's refund statuses that end an attempt without the money reaching the payer.
_FAILURES = {"ABNORMAL": RefundFailure.ABNORMAL, "CLOSED": RefundFailure.CLOSED}


def refund_number(out_trade_no: str, attempt: int) -> str:
    """The ``out_refund_no`` of the order's ``attempt``: ``<out_trade_no>R`` for the
    first (as before attempts were counted), ``<out_trade_no>R<n>`` after."""
    return f"{out_trade_no}R" if attempt <= 1 else f"{out_trade_no}R{attempt}"


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
        due_at=None,
    ):
        raise refuse_state(order, "refunded")
    return order


def start_attempt(
    session: Session,
    order: Order,
    *,
    from_: Collection[OrderState],
    attempt: int,
    when: Collection[ColumnElement[bool]] = (),
    **values: Any,
) -> bool:
    """``order`` to ``refunding`` as refund ``attempt``, its request queued to WeChat Pay
    (see :func:`.orders.move` for ``from_``, ``when`` and ``values``). One attempt is live
    at a time: the move is conditional on the state it leaves."""
    number = refund_number(order.out_trade_no, attempt)
    if not move(
        session,
        order,
        from_=from_,
        to=OrderState.REFUNDING,
        when=when,
        refund_attempt=attempt,
        out_refund_no=number,
        refund_id=None,
        refund_failure=None,
        refund_error=None,
        abnormal_refund=None,
        due_at=None,
        **values,
    ):
        return False
    tasks.defer(session, SEND_REFUND, order_id=order.id, out_refund_no=number)
    return True


def approve(session: Session, *, actor: Actor, order_id: int) -> Order:
    order = get_order(session, actor=actor, order_id=order_id)
    if not start_attempt(session, order, from_={OrderState.REFUND_REQUESTED}, attempt=1):
        raise refuse_state(order, "refunded")
    audit_order(session, actor=actor, action="approve_refund", order=order)
    return order


def refuse(session: Session, *, actor: Actor, order_id: int) -> Order:
    order = get_order(session, actor=actor, order_id=order_id)
    back = order.refund_from or OrderState.PAID
    if not move(session, order, from_={OrderState.REFUND_REQUESTED}, to=back, refund_from=None):
        raise refuse_state(order, "refused a refund")
    audit_order(session, actor=actor, action="refuse_refund", order=order)
    return order


def refund_late_payment(
    session: Session, order: Order, *, transaction_id: str, paid_at: datetime
) -> bool:
    """WeChat Pay took a payment for ``order`` after it was cancelled (its stock, subsidy
    and voucher given back then): the order keeps the payment's record and refunds it at
    once, ``cancelled → refunding`` (``refund_from`` = cancelled, so its holds are not
    given back a second time). False if it was not a cancelled, unpaid order."""
    return start_attempt(
        session,
        order,
        from_={OrderState.CANCELLED},
        attempt=1,
        when=[Order.transaction_id.is_(None)],
        paid_at=paid_at,
        transaction_id=transaction_id,
        refund_from=OrderState.CANCELLED,
    )


def failed(
    session: Session,
    order: Order,
    *,
    out_refund_no: str,
    failure: RefundFailure,
    error: str | None,
    **values: Any,
) -> bool:
    """Attempt ``out_refund_no`` ended without the money reaching the payer:
    ``refunding → refund_failed`` with why. False if that attempt is not the live one."""
    if not move(
        session,
        order,
        from_={OrderState.REFUNDING},
        to=OrderState.REFUND_FAILED,
        when=[Order.out_refund_no == out_refund_no],
        refund_failure=failure,
        refund_error=None if error is None else error[:300],
        **values,
    ):
        return False
    log.warning(
        "a mall refund failed",
        extra={"fields": {"order": order.id, "failure": str(failure), "error": error}},
    )
    return True


def _dead(args: dict[str, Any], error: str) -> None:
    """WeChat Pay never answered the attempt (the task gave up): it may hold it or not, so
    the operator's retry sends the same number again."""
    with unit_of_work() as session:
        order = session.get(Order, int(args["order_id"]))
        if order is None:
            return
        number = args.get("out_refund_no") or order.out_refund_no
        failed(
            session,
            order,
            out_refund_no=str(number),
            failure=RefundFailure.UNANSWERED,
            error=error,
        )


def _said(exc: wechatpay.WechatPayRefused) -> str:
    details = exc.details if isinstance(exc.details, dict) else {}
    return f"{details.get('code', '')}: {details.get('message', '')}"


@tasks.task(SEND_REFUND, max_attempts=30, on_dead=_dead)
def send_refund(order_id: int, out_refund_no: str | None = None) -> None:
    """Ask WeChat Pay to refund the order's whole payment under the attempt's number
    (tasks queued before attempts were counted name none: the order's current one)."""
    with unit_of_work(read_only=True) as session:
        order = session.get(Order, order_id)
        if order is None or order.state != OrderState.REFUNDING or order.refund_id:
            return
        if out_refund_no is not None and order.out_refund_no != out_refund_no:
            return  # an attempt that is over
        number = str(order.out_refund_no)
        reason = order.refund_reason or ""
        if order.refund_from == OrderState.CANCELLED:
            reason = LATE_PAYMENT_REASON
        request = {
            "out_trade_no": order.out_trade_no,
            "out_refund_no": number,
            "reason": reason[:80],
            "notify_url": payments.notify_url(),
            "amount": {"refund": order.total_cents, "total": order.total_cents, "currency": "CNY"},
        }
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    try:
        answer = client.call("POST", "/v3/refund/domestic/refunds", request)
    except wechatpay.WechatPayRefused as exc:
        # Refused for good (e.g. NOT_ENOUGH: the merchant's balance is short): nothing was
        # refunded under this number; an operator sees why and retries.
        with unit_of_work() as session:
            row = session.get(Order, order_id)
            assert row is not None
            failed(
                session,
                row,
                out_refund_no=number,
                failure=RefundFailure.REFUSED,
                error=_said(exc),
            )
        return
    except wechatpay.WechatPayUnavailable as exc:
        raise tasks.Retry(exc.message) from exc
    with unit_of_work() as session:
        session.execute(
            update(Order)
            .where(Order.id == order_id, Order.out_refund_no == number)
            .values(refund_id=str(answer.get("refund_id", ""))[:32] or None)
        )
        record_outcome(session, answer, source="wechatpay.refund", queried=True)


def record_outcome(
    session: Session,
    refund: dict[str, Any],
    *,
    source: str,
    notification_id: str = "",
    queried: bool = False,
) -> Order | None:
    """WeChat Pay says (an answer, a query, a notification: ``queried`` for the first two)
    where the refund it names stands; the order it belongs to, after."""
    number = str(refund.get("out_refund_no", ""))
    order = session.scalar(select(Order).where(Order.out_refund_no == number))
    status = refund.get("refund_status") or refund.get("status")
    if order is None:
        return None
    if status == "SUCCESS":
        _refunded(session, order, refund, source=source, notification_id=notification_id)
    elif status in _FAILURES:
        if status == "ABNORMAL" and order.abnormal_refund is not None and not queried:
            # Applying the abnormal refund made it PROCESSING again, and a REFUND.ABNORMAL
            # sent before that may still arrive: only a query (the sweep's) tells whether
            # the applied refund failed too.
            return order
        account = str(refund.get("user_received_account") or "")
        failed(
            session,
            order,
            out_refund_no=number,
            failure=_FAILURES[status],
            error=f"{status}: {account}" if account else str(status),
            refund_id=str(refund.get("refund_id", ""))[:32] or order.refund_id,
        )
    return order


def _refunded(
    session: Session,
    order: Order,
    refund: dict[str, Any],
    *,
    source: str,
    notification_id: str,
) -> None:
    """The refund reached the payer: ``refunding → refunded`` (or from ``refund_failed``:
    an abnormal refund WeChat Pay settled another way), the ledger row and the holds given
    back, once. A refund that does not match the order changes nothing but its
    ``last_error``."""
    if (refund.get("amount") or {}).get("refund") != order.total_cents:
        order.last_error = "the refund does not match the order's payment"
        return
    number = order.out_refund_no
    if not move(
        session,
        order,
        from_={OrderState.REFUNDING, OrderState.REFUND_FAILED},
        to=OrderState.REFUNDED,
        when=[Order.out_refund_no == number],
        # When WeChat Pay refunded it (as its bill counts the day), not when we heard.
        refunded_at=wechatpay.parse_wechat_time(refund.get("success_time")) or now(),
        refund_failure=None,
        refund_account=str(refund.get("user_received_account") or "")[:64] or None,
    ):
        return
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
            "out_refund_no": number,
            "refund_id": str(refund.get("refund_id", ""))[:32],
            "notification_id": notification_id,
        },
    )
    if order.refund_from != OrderState.CANCELLED:  # a cancel gave them back already
        holds.release(session, order, source="mall.refund")


@payments.handles("REFUND.SUCCESS")
@payments.handles("REFUND.ABNORMAL")
@payments.handles("REFUND.CLOSED")
def refund_outcome(session: Session, notification: wechatpay.Notification) -> None:
    record_outcome(
        session,
        notification.resource,
        source=f"wechatpay.{notification.event_type.lower().replace('.', '_')}",
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
        record_outcome(session, found, source="wechatpay.refund_query", queried=True)

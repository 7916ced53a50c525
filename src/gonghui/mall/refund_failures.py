"""A refund that failed (``refund_failed``), and an operator's way on, each audited:

- :func:`retry`: a refund refused (4xx) or closed never reached WeChat Pay's books or was
  undone there, so it is sent again as a new attempt with a new ``out_refund_no``
  (``<out_trade_no>R<n>``); one WeChat Pay never answered may be held there already, so it
  is sent again under the same number. ``refund_failed → refunding`` is one conditional
  UPDATE of the attempt that was read: two operators retrying at once refund once.
- :func:`apply_abnormal`: an abnormal refund (the payer's account could not take it) is
  not sent again, WeChat Pay holds that money and a new attempt would refund twice; it is
  applied to the member's debit card or to the seller's bank account, under its own number
  (``POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund``,
  https://pay.weixin.qq.com/docs/merchant/apis/refund/refunds/create-abnormal-refund.html),
  and then ends as any refund does (:func:`.refunds.record_outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gonghui.db import unit_of_work
from gonghui.errors import Conflict, InvalidInput
from gonghui.integrations import wechatpay
from gonghui.mall import refunds
from gonghui.mall.errors import MallError
from gonghui.mall.models import AbnormalRefund, Order, OrderState, RefundFailure
from gonghui.mall.orders import audit_order, get_order, move, order_view, refuse_state
from gonghui.tenancy import Actor


def retry(session: Session, *, actor: Actor, order_id: int) -> Order:
    """Send a refused, closed or unanswered refund again (see the module)."""
    order = get_order(session, actor=actor, order_id=order_id)
    failure, attempt = order.refund_failure, order.refund_attempt
    if order.state != OrderState.REFUND_FAILED:
        raise refuse_state(order, "retried")
    if failure == RefundFailure.ABNORMAL:
        raise Conflict(
            MallError.REFUND_ABNORMAL,
            "WeChat Pay holds this refund's money: apply the abnormal refund to a bank card",
            {"state": str(order.state)},
        )
    again = attempt if failure == RefundFailure.UNANSWERED else attempt + 1
    if not refunds.start_attempt(
        session,
        order,
        from_={OrderState.REFUND_FAILED},
        attempt=again,
        when=[Order.refund_attempt == attempt],
    ):
        raise refuse_state(order, "retried")
    audit_order(
        session,
        actor=actor,
        action="retry_refund",
        order=order,
        details={"after": str(failure), "attempt": again, "out_refund_no": order.out_refund_no},
    )
    return order


@dataclass(frozen=True)
class BankCard:
    """The member's debit card for an abnormal refund: sent to WeChat Pay sealed, never
    stored (the audit log keeps the bank only)."""

    bank_type: str  # WeChat Pay's bank type, e.g. ICBC_DEBIT
    account: str
    real_name: str


def apply_abnormal(
    *, actor: Actor, order_id: int, kind: AbnormalRefund, card: BankCard | None
) -> dict[str, Any]:
    """Apply the order's abnormal refund to ``card`` (``USER_BANK_CARD``) or to the
    seller's bank account (``MERCHANT_BANK_CARD``: the seller pays the member on by
    hand); the order as the API shows it. Nothing changes here if WeChat Pay refuses."""
    if (kind == AbnormalRefund.USER_BANK_CARD) != (card is not None):
        raise InvalidInput(
            MallError.BANK_CARD, "a refund to the member's card needs the card, and only then"
        )
    with unit_of_work(read_only=True) as session:
        order = get_order(session, actor=actor, order_id=order_id)
        if (
            order.state != OrderState.REFUND_FAILED
            or order.refund_failure != RefundFailure.ABNORMAL
            or not order.refund_id
        ):
            raise refuse_state(order, "applied an abnormal refund")
        refund_id, number = order.refund_id, str(order.out_refund_no)
    merchant = wechatpay.configured_merchant()
    body: dict[str, Any] = {"out_refund_no": number, "type": str(kind)}
    serial = None
    if card is not None:
        serial = wechatpay.sealing_key(merchant)
        body.update(
            bank_type=card.bank_type,
            bank_account=wechatpay.seal(merchant, serial, card.account),
            real_name=wechatpay.seal(merchant, serial, card.real_name),
        )
    details: dict[str, Any] = {"type": str(kind), "out_refund_no": number}
    if card is not None:
        details["bank_type"] = card.bank_type
    client = wechatpay.WechatPayClient(merchant)
    path = f"/v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund"
    try:
        answer = client.call("POST", path, body, serial=serial)
    except wechatpay.WechatPayRefused as exc:
        with unit_of_work() as session:
            order = get_order(session, actor=actor, order_id=order_id)
            refused = {**details, "refused": (exc.details or {}).get("code")}
            audit_order(
                session, actor=actor, action="apply_abnormal_refund", order=order, details=refused
            )
        raise
    with unit_of_work() as session:
        order = get_order(session, actor=actor, order_id=order_id)
        move(
            session,
            order,
            from_={OrderState.REFUND_FAILED},
            to=OrderState.REFUNDING,
            when=[
                Order.out_refund_no == number,
                Order.refund_failure == RefundFailure.ABNORMAL,
            ],
            refund_failure=None,
            refund_error=None,
            abnormal_refund=kind,
        )
        audit_order(
            session, actor=actor, action="apply_abnormal_refund", order=order, details=details
        )
        refunds.record_outcome(session, answer, source="wechatpay.abnormal_refund", queried=True)
        return order_view(session, order, staff=True)

"""JSAPI payments and refunds: placing an order (``prepay_id``), querying and closing it,
the payer paying (a ``TRANSACTION.SUCCESS`` notification to the order's notify_url), and
refunds (``POST /v3/refund/domestic/refunds``, idempotent by ``out_refund_no``; query;
``apply-abnormal-refund``), each ending as the control endpoints say: the money is back
(``REFUND.SUCCESS``), the refund closed (``REFUND.CLOSED``, the money back with the
merchant) or abnormal (``REFUND.ABNORMAL``, the payer's account could not take it).

As at WeChat Pay: placing the same ``out_trade_no`` again with the same content answers
the same ``prepay_id``, with other content it is refused; a closed or expired order cannot
be paid (unless the control endpoint plays a payment that raced the close); an order paid
cannot be closed; refunds never pass what was paid, nor the merchant's balance when the
control endpoint sets one (403 ``NOT_ENOUGH``); an abnormal refund is applied once, to a
debit card whose number and holder come sealed for the platform key, or to the merchant's
bank account. https://pay.weixin.qq.com/doc/v3/merchant/4012791856 (JSAPI), 4012791862
(refunds), https://pay.weixin.qq.com/docs/merchant/apis/refund/refunds/create-abnormal-refund.html.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError
from wechatpayv3.utils import rsa_decrypt

from gonghui import clock
from gonghui.integrations.wechatpay_simulator.bills import bill, offer, yuan
from gonghui.integrations.wechatpay_simulator.protocol import (
    PUBLIC_KEY_ID,
    Delivery,
    Refusal,
    SignedCall,
    SimulatorRoute,
    before_answer,
    load_secrets,
    lost_answer,
    notify,
    now_text,
    signed,
)

router = APIRouter(route_class=SimulatorRoute)


@dataclass
class _Trade:
    appid: str
    mchid: str
    out_trade_no: str
    description: str
    total: int
    openid: str
    notify_url: str
    time_expire: datetime | None
    prepay_id: str
    state: str = "NOTPAY"  # SUCCESS, CLOSED, REFUND
    transaction_id: str | None = None
    success_time: str | None = None
    refunded: int = 0


@dataclass
class _Refund:
    refund_id: str
    out_refund_no: str
    trade: _Trade
    amount: int
    reason: str
    notify_url: str
    status: str = "PROCESSING"  # SUCCESS, CLOSED, ABNORMAL
    create_time: str = field(default_factory=now_text)
    success_time: str | None = None
    account: str = "支付用户零钱"  # where the money goes (user_received_account)
    abnormal_type: str | None = None  # applied: USER_BANK_CARD or MERCHANT_BANK_CARD


@dataclass
class _State:
    trades: dict[str, _Trade] = field(default_factory=dict)  # by out_trade_no
    refunds: dict[str, _Refund] = field(default_factory=dict)  # by out_refund_no
    # The merchant's balance refunds are paid from, in cents (None: never short).
    balance: int | None = None


_lock = threading.Lock()
_state = _State()


def reset() -> None:
    global _state
    with _lock:
        _state = _State()


class _Amount(BaseModel):
    total: int = Field(ge=1)
    currency: str = "CNY"


class _Payer(BaseModel):
    openid: str = Field(min_length=1, max_length=128)


class _Jsapi(BaseModel):
    appid: str = Field(min_length=1, max_length=32)
    mchid: str
    description: str = Field(min_length=1, max_length=127)
    out_trade_no: str = Field(min_length=6, max_length=32, pattern=r"^[0-9A-Za-z_\-|*]+$")
    time_expire: datetime | None = None
    notify_url: str = Field(pattern=r"^https?://")
    amount: _Amount
    payer: _Payer


def _validated(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Refusal(400, "PARAM_ERROR", str(exc)[:200]) from None


def _expired(trade: _Trade) -> bool:
    return trade.time_expire is not None and clock.now() > trade.time_expire


@router.post("/v3/pay/transactions/jsapi")
async def jsapi(call: SignedCall) -> Response:
    new: _Jsapi = _validated(_Jsapi, call.body)
    lost = await before_answer()
    with _lock:
        trade = _state.trades.get(new.out_trade_no)
        if trade is None:
            trade = _Trade(
                appid=new.appid,
                mchid=call.mchid,
                out_trade_no=new.out_trade_no,
                description=new.description,
                total=new.amount.total,
                openid=new.payer.openid,
                notify_url=new.notify_url,
                time_expire=new.time_expire,
                prepay_id=f"wx{secrets.token_hex(15)}",
            )
            _state.trades[new.out_trade_no] = trade
        elif (trade.total, trade.openid, trade.appid) != (
            new.amount.total,
            new.payer.openid,
            new.appid,
        ):
            raise Refusal(400, "INVALID_REQUEST", "201 商户订单号重复")
        elif trade.state == "CLOSED":
            raise Refusal(400, "ORDER_CLOSED", "订单已关闭")
        elif trade.state != "NOTPAY":
            raise Refusal(400, "ORDERPAID", "该订单已支付")
        prepay_id = trade.prepay_id
    if lost:
        raise lost_answer()
    return signed(200, {"prepay_id": prepay_id})


def _trade_view(trade: _Trade) -> dict[str, Any]:
    view: dict[str, Any] = {
        "appid": trade.appid,
        "mchid": trade.mchid,
        "out_trade_no": trade.out_trade_no,
        "trade_state": trade.state,
        "trade_state_desc": {
            "NOTPAY": "未支付",
            "SUCCESS": "支付成功",
            "CLOSED": "已关闭",
            "REFUND": "转入退款",
        }[trade.state],
        "amount": {"total": trade.total, "currency": "CNY"},
        "payer": {"openid": trade.openid},
    }
    if trade.transaction_id is not None:
        view.update(
            transaction_id=trade.transaction_id,
            trade_type="JSAPI",
            bank_type="OTHERS",
            success_time=trade.success_time,
            amount={
                "total": trade.total,
                "payer_total": trade.total,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        )
    return view


def _trade(out_trade_no: str, mchid: str) -> _Trade:
    """The merchant's order (call with the lock held)."""
    trade = _state.trades.get(out_trade_no)
    if trade is None or trade.mchid != mchid:
        raise Refusal(404, "ORDER_NOT_EXIST", "订单不存在")
    return trade


@router.get("/v3/pay/transactions/out-trade-no/{out_trade_no}")
async def query_trade(out_trade_no: str, call: SignedCall) -> Response:
    await before_answer()
    with _lock:
        view = _trade_view(_trade(out_trade_no, call.mchid))
    return signed(200, view)


@router.post("/v3/pay/transactions/out-trade-no/{out_trade_no}/close")
async def close_trade(out_trade_no: str, call: SignedCall) -> Response:
    lost = await before_answer()
    with _lock:
        trade = _trade(out_trade_no, call.mchid)
        if trade.state in ("SUCCESS", "REFUND"):
            raise Refusal(400, "ORDERPAID", "订单已支付")
        trade.state = "CLOSED"
    if lost:
        raise lost_answer()
    return signed(204, None)


class _Payment(Delivery):
    # The payment raced the order's close (or its time running out) and won: WeChat Pay
    # takes it although the merchant has closed the order.
    after_close: bool = False


@router.post("/_control/transactions/{out_trade_no}/pay")
def pay(out_trade_no: str, body: _Payment) -> dict[str, Any]:
    """The payer confirms the payment in WeChat: the order is paid, and TRANSACTION.SUCCESS
    goes to its notify_url (twice with ``duplicate``; kept until released with ``hold``).
    An order closed, expired or paid already is not paid (again), unless ``after_close``
    plays a payment that raced the close."""
    with _lock:
        trade = _state.trades.get(out_trade_no)
        open_ = trade is not None and trade.state == "NOTPAY" and not _expired(trade)
        raced = body.after_close and trade is not None and trade.state in ("NOTPAY", "CLOSED")
        if trade is None or not (open_ or raced):
            return {"paid": False}
        trade.state = "SUCCESS"
        trade.transaction_id = f"42000{secrets.randbelow(10**23):023d}"
        trade.success_time = now_text()
        resource = _trade_view(trade)
    statuses = notify(
        trade.notify_url,
        "TRANSACTION.SUCCESS",
        resource,
        summary="支付成功",
        duplicate=body.duplicate,
        hold=body.hold,
    )
    return {"paid": True, "transaction_id": trade.transaction_id, "statuses": statuses}


class _RefundAmount(BaseModel):
    refund: int = Field(ge=1)
    total: int = Field(ge=1)
    currency: str = "CNY"


class _NewRefund(BaseModel):
    transaction_id: str | None = None
    out_trade_no: str | None = None
    out_refund_no: str = Field(min_length=1, max_length=64)
    reason: str = Field(default="", max_length=80)
    notify_url: str = Field(default="", pattern=r"^(https?://.*)?$")
    amount: _RefundAmount


def _refund_view(refund: _Refund) -> dict[str, Any]:
    trade = refund.trade
    return {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": trade.transaction_id,
        "out_trade_no": trade.out_trade_no,
        "channel": "ORIGINAL" if refund.abnormal_type is None else "OTHER_BANKCARD",
        "user_received_account": refund.account,
        "success_time": refund.success_time,
        "create_time": refund.create_time,
        "status": refund.status,
        "amount": {
            "total": trade.total,
            "refund": refund.amount,
            "payer_total": trade.total,
            "payer_refund": refund.amount,
            "currency": "CNY",
        },
    }


@router.post("/v3/refund/domestic/refunds")
async def create_refund(call: SignedCall) -> Response:
    new: _NewRefund = _validated(_NewRefund, call.body)
    lost = await before_answer()
    with _lock:
        refund = _state.refunds.get(new.out_refund_no)
        if refund is None:
            trade = next(
                (
                    t
                    for t in _state.trades.values()
                    if t.mchid == call.mchid
                    and t.transaction_id is not None
                    and new.out_trade_no in (None, t.out_trade_no)
                    and new.transaction_id in (None, t.transaction_id)
                    and (new.out_trade_no or new.transaction_id)
                ),
                None,
            )
            if trade is None:
                raise Refusal(404, "RESOURCE_NOT_EXISTS", "订单不存在或未支付")
            if new.amount.total != trade.total:
                raise Refusal(400, "PARAM_ERROR", "订单金额与原订单不一致")
            if trade.refunded + new.amount.refund > trade.total:
                raise Refusal(403, "NOT_ENOUGH", "退款金额超过可退金额")
            if _state.balance is not None:
                if new.amount.refund > _state.balance:
                    raise Refusal(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
                _state.balance -= new.amount.refund
            trade.refunded += new.amount.refund
            trade.state = "REFUND"
            refund = _Refund(
                refund_id=f"50000{secrets.randbelow(10**24):024d}",
                out_refund_no=new.out_refund_no,
                trade=trade,
                amount=new.amount.refund,
                reason=new.reason,
                notify_url=new.notify_url,
            )
            _state.refunds[new.out_refund_no] = refund
        view = _refund_view(refund)
    if lost:
        raise lost_answer()
    return signed(200, view)


@router.get("/v3/refund/domestic/refunds/{out_refund_no}")
async def query_refund(out_refund_no: str, call: SignedCall) -> Response:
    await before_answer()
    with _lock:
        refund = _state.refunds.get(out_refund_no)
        if refund is None or refund.trade.mchid != call.mchid:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        view = _refund_view(refund)
    return signed(200, view)


# How a control endpoint ends a refund: its status, notification and summary.
_ENDINGS = {
    "succeed": ("SUCCESS", "REFUND.SUCCESS", "退款成功"),
    "close": ("CLOSED", "REFUND.CLOSED", "退款关闭"),
    "abnormal": ("ABNORMAL", "REFUND.ABNORMAL", "退款异常"),
}


@router.post("/_control/refunds/{out_refund_no}/{ending}")
def end_refund(out_refund_no: str, ending: str, body: Delivery) -> dict[str, Any]:
    """A processing refund ends: ``succeed`` (the money is back with the payer),
    ``close`` (closed: the money is back with the merchant, refundable again) or
    ``abnormal`` (the payer's account could not take it; WeChat Pay holds the money until
    the abnormal refund is applied); its notification goes to its notify_url (twice with
    ``duplicate``; kept until released with ``hold``)."""
    if ending not in _ENDINGS:
        return {"ended": False, "refused": ending}
    status, event_type, summary = _ENDINGS[ending]
    with _lock:
        refund = _state.refunds.get(out_refund_no)
        if refund is None or refund.status != "PROCESSING":
            return {"ended": False}
        refund.status = status
        trade = refund.trade
        if status == "SUCCESS":
            refund.success_time = now_text()
        elif status == "CLOSED":
            trade.refunded -= refund.amount
            if _state.balance is not None:
                _state.balance += refund.amount
            if trade.refunded == 0:
                trade.state = "SUCCESS"
        resource = {
            "mchid": trade.mchid,
            "out_trade_no": trade.out_trade_no,
            "transaction_id": trade.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": status,
            "user_received_account": refund.account,
            "amount": {
                "total": trade.total,
                "refund": refund.amount,
                "payer_total": trade.total,
                "payer_refund": refund.amount,
            },
        }
        if refund.success_time is not None:
            resource["success_time"] = refund.success_time
        url = refund.notify_url
    if not url:
        return {"ended": True, "statuses": None}
    statuses = notify(
        url, event_type, resource, summary=summary, duplicate=body.duplicate, hold=body.hold
    )
    return {"ended": True, "statuses": statuses}


class _Balance(BaseModel):
    cents: int | None = Field(default=None, ge=0)


@router.post("/_control/balance")
def set_balance(body: _Balance) -> dict[str, Any]:
    """The merchant's balance refunds are paid from (None: never short); a refund it cannot
    cover is refused 403 ``NOT_ENOUGH``."""
    with _lock:
        _state.balance = body.cents
    return {"cents": body.cents}


class _AbnormalRefund(BaseModel):
    out_refund_no: str = Field(min_length=1, max_length=64)
    type: Literal["USER_BANK_CARD", "MERCHANT_BANK_CARD"]
    bank_type: str | None = Field(default=None, max_length=16)
    bank_account: str | None = Field(default=None, max_length=1024)
    real_name: str | None = Field(default=None, max_length=1024)


def _unsealed(text: str | None, serial: str) -> str:
    """A sensitive field as the merchant sealed it for the platform key ``serial`` names."""
    s = load_secrets()
    if text is None or serial not in (PUBLIC_KEY_ID, s.certificate_serial):
        raise Refusal(400, "PARAM_ERROR", "退款至用户银行卡须提供开户银行、卡号和姓名")
    try:
        return str(rsa_decrypt(text, s.platform_key))
    except ValueError:
        raise Refusal(400, "PARAM_ERROR", "敏感信息解密失败") from None


@router.post("/v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund")
async def apply_abnormal_refund(refund_id: str, call: SignedCall, request: Request) -> Response:
    new: _AbnormalRefund = _validated(_AbnormalRefund, call.body)
    account = "商户基本账户"
    if new.type == "USER_BANK_CARD":
        serial = request.headers.get("wechatpay-serial", "")
        number = _unsealed(new.bank_account, serial)
        _unsealed(new.real_name, serial)
        if not new.bank_type or not number.isdigit():
            raise Refusal(400, "PARAM_ERROR", "开户银行或银行卡号不正确")
        account = f"{new.bank_type}借记卡{number[-4:]}"
    lost = await before_answer()
    with _lock:
        refund = _state.refunds.get(new.out_refund_no)
        if refund is None or refund.refund_id != refund_id or refund.trade.mchid != call.mchid:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        if refund.status != "ABNORMAL":
            raise Refusal(400, "INVALID_REQUEST", "退款单状态不是退款异常")
        refund.status = "PROCESSING"
        refund.abnormal_type = new.type
        refund.account = account
        view = _refund_view(refund)
    if lost:
        raise lost_answer()
    return signed(200, view)


_TRADE_BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
)
_TRADE_BILL_SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
# WeChat Pay's bills run by Beijing time.
_BILL_ZONE = ZoneInfo("Asia/Shanghai")


def _bill_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(_BILL_ZONE)


def _trade_row(trade: _Trade, at: datetime, refund: _Refund | None) -> list[str]:
    """A bill row: the payment, or (``refund``) one refund of it."""
    refund_columns = ["", "", "0.00", "0.00", "", ""]
    paid, refunded = trade.total, 0
    if refund is not None:
        paid, refunded = 0, refund.amount
        refund_columns = [
            refund.refund_id,
            refund.out_refund_no,
            yuan(refunded),
            "0.00",
            "ORIGINAL",
            refund.status,
        ]
    return [
        at.strftime("%Y-%m-%d %H:%M:%S"),
        trade.appid,
        trade.mchid,
        "0",
        "",
        trade.transaction_id or "",
        trade.out_trade_no,
        trade.openid,
        "JSAPI",
        "SUCCESS" if refund is None else "REFUND",
        "OTHERS",
        "CNY",
        yuan(paid),
        "0.00",
        *refund_columns,
        trade.description,
        "",
        "0.00000",
        "0.60%",
        yuan(trade.total),
        yuan(refunded),
        "",
    ]


@router.get("/v3/bill/tradebill")
async def trade_bill(call: SignedCall, request: Request, bill_date: str = "") -> Response:
    """The day's payments and refunds (申请交易账单, ``bill_type=ALL``) as a file to
    download; a day with neither has no bill (400 ``NO_STATEMENT_EXIST``)."""
    try:
        day = date.fromisoformat(bill_date)
    except ValueError:
        raise Refusal(400, "PARAM_ERROR", "bill_date 格式为 yyyy-MM-DD") from None
    await before_answer()
    rows: list[list[str]] = []
    paid_total = refunded_total = 0
    with _lock:
        for trade in _state.trades.values():
            at = _bill_time(trade.success_time)
            if trade.mchid == call.mchid and at is not None and at.date() == day:
                rows.append(_trade_row(trade, at, None))
                paid_total += trade.total
        for refund in _state.refunds.values():
            at = _bill_time(refund.success_time)
            if refund.trade.mchid == call.mchid and at is not None and at.date() == day:
                rows.append(_trade_row(refund.trade, at, refund))
                refunded_total += refund.amount
    if not rows:
        raise Refusal(400, "NO_STATEMENT_EXIST", "要查询的账单不存在")
    rows.sort(key=lambda row: row[0])
    summary = [str(len(rows)), yuan(paid_total), yuan(refunded_total), "0.00", "0.00000"]
    summary += [yuan(paid_total), yuan(refunded_total)]
    content = bill(_TRADE_BILL_HEADER, rows, (_TRADE_BILL_SUMMARY, summary))
    return signed(200, offer(request, content, "download_url"))

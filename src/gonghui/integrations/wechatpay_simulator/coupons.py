"""代金券 (coupon) stocks: create, start, pause, restart, query; sending a coupon to a user
(idempotent by ``out_request_no``, within the stock's total and per-user limits); the
coupon callback URL; and a member spending a coupon (``COUPON.USE``)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from gonghui.integrations.wechatpay_simulator.bills import bill, offer, yuan
from gonghui.integrations.wechatpay_simulator.protocol import (
    Delivery,
    Refusal,
    SignedCall,
    SimulatorRoute,
    before_answer,
    ids,
    lost_answer,
    notify,
    now_text,
    signed,
)
from gonghui.settings import get_settings

router = APIRouter(route_class=SimulatorRoute)


@dataclass
class _Stock:
    id: str
    creator: str
    name: str
    max_coupons: int
    max_amount: int
    max_coupons_per_user: int
    coupon_amount: int
    transaction_minimum: int
    begin: str
    end: str
    status: str = "unactivated"  # running, paused
    distributed: int = 0
    per_user: dict[str, int] = field(default_factory=dict)


@dataclass
class _Coupon:
    id: str
    stock_id: str
    openid: str
    appid: str
    status: str = "SENDED"  # USED
    used_at: str = ""
    used_amount: int = 0
    transaction_id: str = ""


@dataclass
class _State:
    stocks: dict[str, _Stock] = field(default_factory=dict)
    stocks_by_request: dict[tuple[str, str], str] = field(default_factory=dict)
    coupons: dict[str, _Coupon] = field(default_factory=dict)
    sent: dict[tuple[str, str], str] = field(default_factory=dict)  # (mchid, out_request_no)
    callbacks: dict[str, str] = field(default_factory=dict)
    send_calls: int = 0
    # Coupon sends a second each merchant may make (None: the setting), the times of the
    # last second's, and how many were answered 429.
    sends_per_s: int | None = None
    recent_sends: dict[str, deque[float]] = field(default_factory=dict)
    frequency_limited: int = 0


_lock = threading.Lock()
_state = _State()


def reset() -> None:
    global _state
    with _lock:
        _state = _State()


def send_calls() -> int:
    with _lock:
        return _state.send_calls


def frequency_limited() -> int:
    """How many coupon sends were answered 429 FREQUENCY_LIMITED."""
    with _lock:
        return _state.frequency_limited


def set_send_limit(sends_per_s: int | None) -> None:
    with _lock:
        _state.sends_per_s = sends_per_s


def _within_frequency(mchid: str) -> None:
    """WeChat Pay's limit of coupon sends per merchant (500 a second, documented), over the
    last second (call with the lock held): beyond it, 429 FREQUENCY_LIMITED."""
    limit = _state.sends_per_s
    if limit is None:
        limit = get_settings().wechatpay_simulator_sends_per_s
    if limit <= 0:
        return
    at = time.monotonic()
    recent = _state.recent_sends.setdefault(mchid, deque())
    while recent and recent[0] <= at - 1.0:
        recent.popleft()
    if len(recent) >= limit:
        _state.frequency_limited += 1
        raise Refusal(429, "FREQUENCY_LIMITED", "频率超限，请降低请求频率")
    recent.append(at)


class _UseRule(BaseModel):
    max_coupons: int = Field(ge=1, le=10**9)
    max_amount: int = Field(ge=1)
    max_coupons_per_user: int = Field(ge=1, le=100)
    natural_person_limit: bool = False
    prevent_api_abuse: bool = False


class _FixedCoupon(BaseModel):
    coupon_amount: int = Field(ge=1)
    transaction_minimum: int = Field(ge=0)


class _CouponRule(BaseModel):
    fixed_normal_coupon: _FixedCoupon
    available_merchants: list[str] = []


class _NewStock(BaseModel):
    stock_name: str = Field(min_length=1, max_length=20)
    belong_merchant: str
    available_begin_time: str
    available_end_time: str
    stock_use_rule: _UseRule
    coupon_use_rule: _CouponRule
    no_cash: bool = False
    stock_type: str = "NORMAL"
    out_request_no: str = Field(min_length=1, max_length=128)


@router.post("/v3/marketing/favor/coupon-stocks")
async def create_stock(call: SignedCall) -> Response:
    try:
        new = _NewStock.model_validate(call.body)
    except ValidationError as exc:
        raise Refusal(400, "PARAM_ERROR", str(exc)[:200]) from None
    rule, coupon = new.stock_use_rule, new.coupon_use_rule.fixed_normal_coupon
    if rule.max_amount != rule.max_coupons * coupon.coupon_amount:
        raise Refusal(400, "PARAM_ERROR", "max_amount 须等于 max_coupons × coupon_amount")
    lost = await before_answer()
    with _lock:
        stock_id = _state.stocks_by_request.get((call.mchid, new.out_request_no))
        if stock_id is None:
            stock_id = f"{next(ids) + 16000000:010d}"
            _state.stocks[stock_id] = _Stock(
                id=stock_id,
                creator=call.mchid,
                name=new.stock_name,
                max_coupons=rule.max_coupons,
                max_amount=rule.max_amount,
                max_coupons_per_user=rule.max_coupons_per_user,
                coupon_amount=coupon.coupon_amount,
                transaction_minimum=coupon.transaction_minimum,
                begin=new.available_begin_time,
                end=new.available_end_time,
            )
            _state.stocks_by_request[(call.mchid, new.out_request_no)] = stock_id
    if lost:
        raise lost_answer()
    return signed(200, {"stock_id": stock_id, "create_time": now_text()})


_MOVES = {
    "start": ({"unactivated"}, "running", "start_time"),
    "pause": ({"running"}, "paused", "pause_time"),
    "restart": ({"paused"}, "running", "restart_time"),
}


def _own_stock(stock_id: str, mchid: str) -> _Stock:
    """The merchant's stock (call with the lock held); anyone else's does not exist."""
    stock = _state.stocks.get(stock_id)
    if stock is None or stock.creator != mchid:
        raise Refusal(404, "RESOURCE_NOT_EXISTS", "批次不存在")
    return stock


@router.post("/v3/marketing/favor/stocks/{stock_id}/{move}")
async def move_stock(stock_id: str, move: str, call: SignedCall) -> Response:
    if move not in _MOVES:
        raise Refusal(404, "RESOURCE_NOT_EXISTS", "无此接口")
    lost = await before_answer()
    allowed, to, stamp = _MOVES[move]
    with _lock:
        stock = _own_stock(stock_id, call.mchid)
        if stock.status not in allowed and stock.status != to:
            raise Refusal(400, "INVALID_REQUEST", f"批次状态 {stock.status} 不允许此操作")
        stock.status = to
    if lost:
        raise lost_answer()
    return signed(200, {"stock_id": stock_id, stamp: now_text()})


@router.get("/v3/marketing/favor/stocks/{stock_id}")
async def query_stock(stock_id: str, call: SignedCall) -> Response:
    await before_answer()
    with _lock:
        body = _stock_view(_own_stock(stock_id, call.mchid))
    return signed(200, body)


def _stock_view(stock: _Stock) -> dict[str, Any]:
    return {
        "stock_id": stock.id,
        "stock_creator_mchid": stock.creator,
        "stock_name": stock.name,
        "status": stock.status,
        "distributed_coupons": stock.distributed,
        "available_begin_time": stock.begin,
        "available_end_time": stock.end,
        "stock_use_rule": {
            "max_coupons": stock.max_coupons,
            "max_amount": stock.max_amount,
            "max_coupons_per_user": stock.max_coupons_per_user,
        },
        "fixed_normal_coupon": {
            "coupon_amount": stock.coupon_amount,
            "transaction_minimum": stock.transaction_minimum,
        },
        "stock_type": "NORMAL",
    }


@router.post("/v3/marketing/favor/users/{openid}/coupons")
async def send_coupon(openid: str, call: SignedCall) -> Response:
    body = call.body
    stock_id, out_request_no = str(body.get("stock_id", "")), str(body.get("out_request_no", ""))
    appid = str(body.get("appid", ""))
    if not stock_id or not out_request_no or not appid or not openid:
        raise Refusal(400, "PARAM_ERROR", "stock_id、out_request_no、appid 必填")
    with _lock:
        _state.send_calls += 1
        _within_frequency(call.mchid)
    lost = await before_answer()
    with _lock:
        coupon_id = _state.sent.get((call.mchid, out_request_no))
        if coupon_id is None:
            stock = _own_stock(stock_id, str(body.get("stock_creator_mchid", call.mchid)))
            if stock.status != "running":
                raise Refusal(403, "RULE_LIMIT", "批次未激活或已暂停")
            if stock.distributed >= stock.max_coupons:
                raise Refusal(403, "NOT_ENOUGH", "批次预算不足")
            if stock.per_user.get(openid, 0) >= stock.max_coupons_per_user:
                raise Refusal(403, "RULE_LIMIT", "用户领券已达上限")
            coupon_id = f"{next(ids) + 90000000:010d}"
            stock.distributed += 1
            stock.per_user[openid] = stock.per_user.get(openid, 0) + 1
            _state.coupons[coupon_id] = _Coupon(coupon_id, stock_id, openid, appid)
            _state.sent[(call.mchid, out_request_no)] = coupon_id
    if lost:
        raise lost_answer()
    return signed(200, {"coupon_id": coupon_id})


@router.post("/v3/marketing/favor/callbacks")
async def set_callback(call: SignedCall) -> Response:
    url = str(call.body.get("notify_url", ""))
    if not url.startswith(("https://", "http://")):
        raise Refusal(400, "PARAM_ERROR", "notify_url 须为 URL")
    with _lock:
        _state.callbacks[call.mchid] = url
    return signed(200, {"update_time": now_text(), "notify_url": url})


_USE_FLOW_HEADER = (
    "批次id,优惠id,优惠类型,优惠金额（元）,订单总金额（元）,交易类型,支付单号,消耗时间,"
    "消耗商户号,设备号,银行流水号,单品信息"
)


@router.get("/v3/marketing/favor/stocks/{stock_id}/use-flow")
async def use_flow(stock_id: str, call: SignedCall, request: Request) -> Response:
    """The stock's coupons used so far, as a file to download (下载批次核销明细)."""
    await before_answer()
    with _lock:
        stock = _own_stock(stock_id, call.mchid)
        used = [c for c in _state.coupons.values() if c.stock_id == stock_id and c.used_at]
        rows = [
            [
                stock.id,
                c.id,
                "全场代金券",
                yuan(c.used_amount),
                yuan(stock.transaction_minimum),
                "支付",
                c.transaction_id,
                c.used_at.replace("T", " ")[:19],
                stock.creator,
                "",
                "",
                "",
            ]
            for c in used
        ]
    content = bill(_USE_FLOW_HEADER, rows, ("总条数", [str(len(rows))]))
    return signed(200, offer(request, content, "url"))


class _Use(Delivery):
    transaction_id: str = Field(default_factory=lambda: f"42000{secrets.randbelow(10**23):023d}")
    # What WeChat Pay's own records say was taken off (a planted difference for
    # reconciliation); default the coupon's amount.
    recorded_amount: int | None = Field(default=None, ge=0)


@router.post("/_control/coupons/{coupon_id}/use")
def use_coupon(coupon_id: str, body: _Use) -> dict[str, Any]:
    """A member pays with the coupon: it is used, and COUPON.USE goes to the callback
    (twice with ``duplicate``; kept until released with ``hold``)."""
    with _lock:
        coupon = _state.coupons.get(coupon_id)
        if coupon is None or coupon.status != "SENDED":
            return {"used": False}
        coupon.status = "USED"
        stock = _state.stocks[coupon.stock_id]
        coupon.used_at = now_text()
        coupon.transaction_id = body.transaction_id
        coupon.used_amount = (
            stock.coupon_amount if body.recorded_amount is None else body.recorded_amount
        )
        url = _state.callbacks.get(stock.creator)
    resource = {
        "stock_creator_mchid": stock.creator,
        "stock_id": stock.id,
        "coupon_id": coupon.id,
        "coupon_name": stock.name,
        "status": "USED",
        "coupon_type": "NORMAL",
        "no_cash": False,
        "normal_coupon_information": {
            "coupon_amount": stock.coupon_amount,
            "transaction_minimum": stock.transaction_minimum,
        },
        "consume_information": {
            "consume_time": now_text(),
            "consume_mchid": stock.creator,
            "transaction_id": body.transaction_id,
        },
    }
    if url is None:
        return {"used": True, "notified": False}
    statuses = notify(
        url,
        "COUPON.USE",
        resource,
        summary="代金券核销通知",
        duplicate=body.duplicate,
        hold=body.hold,
    )
    if statuses is None:
        return {"used": True, "notified": False}
    return {"used": True, "notified": True, "statuses": statuses}

"""A local stand-in for the WeChat Pay API v3 endpoints gonghui uses (development, tests).

It speaks the protocol as WeChat Pay does (see :mod:`gonghui.integrations.wechatpay`):
every request's ``Authorization`` is checked against the merchant's public key (unknown
merchant, stale timestamp or bad signature: 401 ``SIGN_ERROR``), every answer is signed
with the platform's key, and notifications are signed and their resource sealed with
AEAD_AES_256_GCM under the API v3 key. The development merchant's and the platform's keys
are generated once into ``data_dir/secrets/wechatpay-simulator.json``
(:func:`development_merchant`), so every process of one deployment shares them.

Endpoints: 代金券 stocks (create, start, pause, restart, query), sending a coupon to a
user (idempotent by ``out_request_no``, within the stock's total and per-user limits), and
the coupon callback URL. Control endpoints under ``/_sim/wechatpay/_control`` play the
outside world: a member spends a coupon (a ``COUPON.USE`` notification to the callback,
optionally twice, or held back and sent later), faults on the next calls (``timeout``: no
answer before the client gives up; ``error``: 500 ``SYSTEM_ERROR``; ``lost``: the call
takes effect but its answer is a 500), and the answer latency (default
``wechatpay_simulator_latency_ms``, 100 ms, WeChat Pay's documented processing time).
State lives in this process's memory, as the WeChat simulator's does.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from wechatpayv3.utils import rsa_sign

from gonghui.integrations.wechatpay import MAX_SKEW_S, SCHEMA, TIMEOUT_S, Merchant
from gonghui.keys import load_or_create
from gonghui.settings import get_settings

router = APIRouter(prefix="/_sim/wechatpay", tags=["simulators"], include_in_schema=False)

PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026120300000000000001"
_AUTH = re.compile(r'(\w+)="([^"]*)"')


def _pem_private(key: RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _new_secrets() -> dict[str, str]:
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (simulator)")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(platform, hashes.SHA256())
    )
    return {
        "merchant_private_key": _pem_private(merchant),
        "merchant_serial_no": secrets.token_hex(20).upper(),
        "apiv3_key": secrets.token_urlsafe(24)[:32],
        "platform_private_key": _pem_private(platform),
        "platform_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
    }


@dataclass(frozen=True)
class _Secrets:
    merchant_key: RSAPrivateKey
    merchant_serial_no: str
    apiv3_key: str
    platform_key: RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_serial(self) -> str:
        return format(self.certificate.serial_number, "X")


_secrets: _Secrets | None = None
_secrets_lock = threading.Lock()


def _load_secrets() -> _Secrets:
    global _secrets
    if _secrets is not None:
        return _secrets
    with _secrets_lock:
        if _secrets is None:
            path = get_settings().data_dir / "secrets" / "wechatpay-simulator.json"
            raw = load_or_create(path, _new_secrets)
            merchant = serialization.load_pem_private_key(
                raw["merchant_private_key"].encode(), None
            )
            platform = serialization.load_pem_private_key(
                raw["platform_private_key"].encode(), None
            )
            assert isinstance(merchant, RSAPrivateKey)
            assert isinstance(platform, RSAPrivateKey)
            _secrets = _Secrets(
                merchant_key=merchant,
                merchant_serial_no=raw["merchant_serial_no"],
                apiv3_key=raw["apiv3_key"],
                platform_key=platform,
                certificate=x509.load_pem_x509_certificate(raw["platform_certificate"].encode()),
            )
        return _secrets


def development_merchant() -> Merchant:
    """The merchant the simulator knows, as the client uses it: its private key, and the
    platform's public key both as WeChat Pay public key (by :data:`PUBLIC_KEY_ID`) and as
    a platform certificate (by its serial)."""
    settings = get_settings()
    return _development_merchant(
        _load_secrets(), settings.wechatpay_mchid, settings.resolved_wechatpay_base_url
    )


@functools.lru_cache(maxsize=4)
def _development_merchant(s: _Secrets, mchid: str, base_url: str) -> Merchant:
    platform: RSAPublicKey = s.platform_key.public_key()
    return Merchant(
        mchid=mchid,
        serial_no=s.merchant_serial_no,
        private_key=s.merchant_key,
        apiv3_key=s.apiv3_key,
        verifying_keys={PUBLIC_KEY_ID: platform, s.certificate_serial: platform},
        base_url=base_url,
    )


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


@dataclass
class _State:
    stocks: dict[str, _Stock] = field(default_factory=dict)
    stocks_by_request: dict[tuple[str, str], str] = field(default_factory=dict)
    coupons: dict[str, _Coupon] = field(default_factory=dict)
    sent: dict[tuple[str, str], str] = field(default_factory=dict)  # (mchid, out_request_no)
    callbacks: dict[str, str] = field(default_factory=dict)
    held: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    latency_s: float | None = None
    sign_with_certificate: bool = False
    send_calls: int = 0


_lock = threading.Lock()
_state = _State()
_ids = iter(range(10**9))


def reset() -> None:
    global _state
    with _lock:
        _state = _State()


def send_calls() -> int:
    with _lock:
        return _state.send_calls


def _latency() -> float:
    chosen = _state.latency_s
    return get_settings().wechatpay_simulator_latency_ms / 1000 if chosen is None else chosen


def _signed(status: int, body: dict[str, Any] | None) -> Response:
    """An answer as WeChat Pay sends one: signed by the platform key."""
    s = _load_secrets()
    text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    serial = s.certificate_serial if _state.sign_with_certificate else PUBLIC_KEY_ID
    headers = {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(s.platform_key, f"{timestamp}\n{nonce}\n{text}\n"),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SCHEMA,
        "Request-ID": secrets.token_hex(12),
    }
    if status == 204:
        return Response(status_code=204, headers=headers)
    return Response(text, status_code=status, headers=headers, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status)


async def _checked(request: Request) -> tuple[str, dict[str, Any]] | Response:
    """The merchant id and JSON body of a correctly signed request, or the refusal."""
    raw = await request.body()
    header = request.headers.get("authorization", "")
    scheme, _, params = header.partition(" ")
    fields = dict(_AUTH.findall(params))
    s = _load_secrets()
    path = request.url.path.removeprefix("/_sim/wechatpay")
    if request.url.query:
        path += f"?{request.url.query}"
    text = raw.decode("utf-8", "replace")
    message = f"{request.method}\n{path}\n{fields.get('timestamp', '')}\n"
    message += f"{fields.get('nonce_str', '')}\n{text}"
    try:
        fresh = abs(time.time() - int(fields.get("timestamp", "0"))) <= MAX_SKEW_S
    except ValueError:
        fresh = False
    if (
        scheme != SCHEMA
        or fields.get("mchid") != get_settings().wechatpay_mchid
        or fields.get("serial_no") != s.merchant_serial_no
        or not fresh
        or not _verify_request(s.merchant_key.public_key(), message, fields.get("signature", ""))
    ):
        return _error(401, "SIGN_ERROR", "签名错误")
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return _error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    if not isinstance(body, dict):
        return _error(400, "PARAM_ERROR", "请求体须为 JSON 对象")
    return fields["mchid"], body


def _verify_request(key: RSAPublicKey, message: str, signature: str) -> bool:
    """RSA-SHA256 (PKCS#1 v1.5) of ``message`` and its final newline, as a merchant signs."""
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            f"{message}\n".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


async def _before_answer() -> Response | str | None:
    """Latency, then the next injected fault if any: an answer instead, or "lost"."""
    await anyio.sleep(_latency())
    with _lock:
        fault = _state.faults.pop(0) if _state.faults else None
    if fault == "timeout":
        await anyio.sleep(TIMEOUT_S + 5)  # the client gives up first
    if fault == "error":
        return _error(500, "SYSTEM_ERROR", "系统错误")
    return fault


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
async def create_stock(request: Request) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    mchid, body = checked
    try:
        new = _NewStock.model_validate(body)
    except ValueError as exc:
        return _error(400, "PARAM_ERROR", str(exc)[:200])
    rule, coupon = new.stock_use_rule, new.coupon_use_rule.fixed_normal_coupon
    if rule.max_amount != rule.max_coupons * coupon.coupon_amount:
        return _error(400, "PARAM_ERROR", "max_amount 须等于 max_coupons × coupon_amount")
    fault = await _before_answer()
    if isinstance(fault, Response):
        return fault
    with _lock:
        stock_id = _state.stocks_by_request.get((mchid, new.out_request_no))
        if stock_id is None:
            stock_id = f"{next(_ids) + 16000000:010d}"
            _state.stocks[stock_id] = _Stock(
                id=stock_id,
                creator=mchid,
                name=new.stock_name,
                max_coupons=rule.max_coupons,
                max_amount=rule.max_amount,
                max_coupons_per_user=rule.max_coupons_per_user,
                coupon_amount=coupon.coupon_amount,
                transaction_minimum=coupon.transaction_minimum,
                begin=new.available_begin_time,
                end=new.available_end_time,
            )
            _state.stocks_by_request[(mchid, new.out_request_no)] = stock_id
    if fault == "lost":
        return _error(500, "SYSTEM_ERROR", "系统错误")
    return _signed(200, {"stock_id": stock_id, "create_time": _now()})


_MOVES = {
    "start": ({"unactivated"}, "running", "start_time"),
    "pause": ({"running"}, "paused", "pause_time"),
    "restart": ({"paused"}, "running", "restart_time"),
}


@router.post("/v3/marketing/favor/stocks/{stock_id}/{move}")
async def move_stock(stock_id: str, move: str, request: Request) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    mchid, _ = checked
    if move not in _MOVES:
        return _error(404, "RESOURCE_NOT_EXISTS", "无此接口")
    fault = await _before_answer()
    if isinstance(fault, Response):
        return fault
    allowed, to, stamp = _MOVES[move]
    with _lock:
        stock = _state.stocks.get(stock_id)
        if stock is None or stock.creator != mchid:
            return _error(404, "RESOURCE_NOT_EXISTS", "批次不存在")
        if stock.status not in allowed and stock.status != to:
            return _error(400, "INVALID_REQUEST", f"批次状态 {stock.status} 不允许此操作")
        stock.status = to
    if fault == "lost":
        return _error(500, "SYSTEM_ERROR", "系统错误")
    return _signed(200, {"stock_id": stock_id, stamp: _now()})


@router.get("/v3/marketing/favor/stocks/{stock_id}")
async def query_stock(stock_id: str, request: Request) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    mchid, _ = checked
    fault = await _before_answer()
    if isinstance(fault, Response):
        return fault
    with _lock:
        stock = _state.stocks.get(stock_id)
        if stock is None or stock.creator != mchid:
            return _error(404, "RESOURCE_NOT_EXISTS", "批次不存在")
        body = _stock_view(stock)
    return _signed(200, body)


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
async def send_coupon(openid: str, request: Request) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    mchid, body = checked
    stock_id, out_request_no = str(body.get("stock_id", "")), str(body.get("out_request_no", ""))
    appid = str(body.get("appid", ""))
    if not stock_id or not out_request_no or not appid or not openid:
        return _error(400, "PARAM_ERROR", "stock_id、out_request_no、appid 必填")
    with _lock:
        _state.send_calls += 1
    fault = await _before_answer()
    if isinstance(fault, Response):
        return fault
    with _lock:
        coupon_id = _state.sent.get((mchid, out_request_no))
        if coupon_id is None:
            stock = _state.stocks.get(stock_id)
            if stock is None or stock.creator != str(body.get("stock_creator_mchid", mchid)):
                return _error(404, "RESOURCE_NOT_EXISTS", "批次不存在")
            if stock.status != "running":
                return _error(403, "RULE_LIMIT", "批次未激活或已暂停")
            if stock.distributed >= stock.max_coupons:
                return _error(403, "NOT_ENOUGH", "批次预算不足")
            if stock.per_user.get(openid, 0) >= stock.max_coupons_per_user:
                return _error(403, "RULE_LIMIT", "用户领券已达上限")
            coupon_id = f"{next(_ids) + 90000000:010d}"
            stock.distributed += 1
            stock.per_user[openid] = stock.per_user.get(openid, 0) + 1
            _state.coupons[coupon_id] = _Coupon(coupon_id, stock_id, openid, appid)
            _state.sent[(mchid, out_request_no)] = coupon_id
    if fault == "lost":
        return _error(500, "SYSTEM_ERROR", "系统错误")
    return _signed(200, {"coupon_id": coupon_id})


@router.post("/v3/marketing/favor/callbacks")
async def set_callback(request: Request) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    mchid, body = checked
    url = str(body.get("notify_url", ""))
    if not url.startswith(("https://", "http://")):
        return _error(400, "PARAM_ERROR", "notify_url 须为 URL")
    with _lock:
        _state.callbacks[mchid] = url
    return _signed(200, {"update_time": _now(), "notify_url": url})


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


class _Use(BaseModel):
    transaction_id: str = Field(default_factory=lambda: f"42000{secrets.randbelow(10**23):023d}")
    duplicate: bool = False
    hold: bool = False


@router.post("/_control/coupons/{coupon_id}/use")
def use_coupon(coupon_id: str, body: _Use) -> dict[str, Any]:
    """A member pays with the coupon: it is used, and COUPON.USE goes to the callback
    (twice with ``duplicate``; kept for :func:`release_held` with ``hold``)."""
    with _lock:
        coupon = _state.coupons.get(coupon_id)
        if coupon is None or coupon.status != "SENDED":
            return {"used": False}
        coupon.status = "USED"
        stock = _state.stocks[coupon.stock_id]
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
            "consume_time": _now(),
            "consume_mchid": stock.creator,
            "transaction_id": body.transaction_id,
        },
    }
    if url is None:
        return {"used": True, "notified": False}
    envelope, headers = notification("COUPON.USE", resource, summary="代金券核销通知")
    deliveries = 2 if body.duplicate else 1
    if body.hold:
        with _lock:
            _state.held.extend([(url, envelope, headers)] * deliveries)
        return {"used": True, "notified": False}
    statuses = [_deliver(url, envelope, headers) for _ in range(deliveries)]
    return {"used": True, "notified": True, "statuses": statuses}


@router.post("/_control/notifications/release")
def release_held() -> dict[str, Any]:
    """Send the notifications held back (late notifications)."""
    with _lock:
        held, _state.held = _state.held, []
    return {"statuses": [_deliver(url, envelope, headers) for url, envelope, headers in held]}


def notification(
    event_type: str, resource: dict[str, Any], *, summary: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A notification body and headers exactly as WeChat Pay sends one: the resource
    sealed under the API v3 key, the whole body signed by the platform key."""
    s = _load_secrets()
    nonce = secrets.token_urlsafe(9)[:12]
    associated = event_type.split(".")[0].lower()
    sealed = AESGCM(s.apiv3_key.encode()).encrypt(
        nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), associated.encode()
    )
    envelope = {
        "id": secrets.token_hex(18),
        "create_time": _now(),
        "event_type": event_type,
        "resource_type": "encrypt-resource",
        "summary": summary,
        "resource": {
            "algorithm": "AEAD_AES_256_GCM",
            "original_type": associated,
            "ciphertext": base64.b64encode(sealed).decode(),
            "associated_data": associated,
            "nonce": nonce,
        },
    }
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    stamp, sig_nonce = str(timestamp or int(time.time())), secrets.token_hex(16)
    serial = s.certificate_serial if _state.sign_with_certificate else PUBLIC_KEY_ID
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": sig_nonce,
        "Wechatpay-Signature": rsa_sign(s.platform_key, f"{stamp}\n{sig_nonce}\n{text}\n"),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SCHEMA,
    }
    return text.encode(), headers


def _deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
    try:
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code
    except httpx.HTTPError:
        return 0


class _Faults(BaseModel):
    faults: list[str] = Field(default=[], max_length=100)
    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    sign_with_certificate: bool = False


@router.post("/_control/faults")
def set_faults(body: _Faults) -> dict[str, Any]:
    """The next calls' faults in order (``timeout``, ``error``, ``lost``), the latency and
    which key id answers carry (the public key's, or the platform certificate's serial)."""
    bad = [f for f in body.faults if f not in ("timeout", "error", "lost")]
    if bad:
        return {"refused": bad}
    with _lock:
        _state.faults = list(body.faults)
        _state.latency_s = None if body.latency_ms is None else body.latency_ms / 1000
        _state.sign_with_certificate = body.sign_with_certificate
    return {"faults": body.faults}


def standalone_app() -> Any:
    """The simulator alone, as its own server (``uvicorn --factory``): one process holds
    its state for every process of a deployment (the benchmarks use it so)."""
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    return app

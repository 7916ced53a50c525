"""What every endpoint of the simulator shares: the keys, the check of a merchant's signed
request (one dependency, :data:`SignedCall`), WeChat Pay's signed answers and error
answers, injected faults and latency, and notifications signed and sealed as WeChat Pay
sends them (delivered at once, twice, or held back and released later)."""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio
import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from wechatpayv3.utils import rsa_sign

from gonghui import clock
from gonghui.integrations.wechatpay import MAX_SKEW_S, SCHEMA, TIMEOUT_S, Merchant
from gonghui.keys import load_or_create
from gonghui.settings import get_settings

PREFIX = "/_sim/wechatpay"
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
class Secrets:
    merchant_key: RSAPrivateKey
    merchant_serial_no: str
    apiv3_key: str
    platform_key: RSAPrivateKey
    certificate: x509.Certificate

    @property
    def certificate_serial(self) -> str:
        return format(self.certificate.serial_number, "X")


_secrets: Secrets | None = None
_secrets_lock = threading.Lock()


def load_secrets() -> Secrets:
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
            _secrets = Secrets(
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
        load_secrets(), settings.wechatpay_mchid, settings.resolved_wechatpay_base_url
    )


@functools.lru_cache(maxsize=4)
def _development_merchant(s: Secrets, mchid: str, base_url: str) -> Merchant:
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
class _State:
    """What every endpoint shares: faults, latency, the answers' key id, held notifications."""

    held: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    latency_s: float | None = None
    sign_with_certificate: bool = False


lock = threading.Lock()
_state = _State()
ids = iter(range(10**9))


def reset() -> None:
    global _state
    with lock:
        _state = _State()


def set_faults(faults: list[str], latency_s: float | None, sign_with_certificate: bool) -> None:
    with lock:
        _state.faults = list(faults)
        _state.latency_s = latency_s
        _state.sign_with_certificate = sign_with_certificate


def _latency() -> float:
    chosen = _state.latency_s
    return get_settings().wechatpay_simulator_latency_ms / 1000 if chosen is None else chosen


def _serial(s: Secrets) -> str:
    return s.certificate_serial if _state.sign_with_certificate else PUBLIC_KEY_ID


def signed(status: int, body: dict[str, Any] | None) -> Response:
    """An answer as WeChat Pay sends one: signed by the platform key."""
    s = load_secrets()
    text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    headers = {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(s.platform_key, f"{timestamp}\n{nonce}\n{text}\n"),
        "Wechatpay-Serial": _serial(s),
        "Wechatpay-Signature-Type": SCHEMA,
        "Request-ID": secrets.token_hex(12),
    }
    if status == 204:
        return Response(status_code=204, headers=headers)
    return Response(text, status_code=status, headers=headers, media_type="application/json")


class Refusal(Exception):
    """WeChat Pay's error answer (``{"code", "message"}``, unsigned), raised by the
    dependency or a handler and answered by :class:`SimulatorRoute`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return JSONResponse({"code": self.code, "message": self.message}, status_code=self.status)


class SimulatorRoute(APIRoute):
    """The simulator's routes answer a :class:`Refusal` as WeChat Pay would, whether a
    dependency or the handler raised it (the app's error envelope is gonghui's, not
    WeChat Pay's)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Refusal as refusal:
                return refusal.response()

        return answer


@dataclass(frozen=True)
class Call:
    """A merchant's request that passed the checks: who signed it, and its JSON body."""

    mchid: str
    body: dict[str, Any]


async def signed_call(request: Request) -> Call:
    """The check every WeChat Pay endpoint makes before anything else: the request is
    signed by the merchant's key (unknown merchant, stale timestamp or bad signature:
    401 ``SIGN_ERROR``), any ``mchid`` it names (in its body or query) is the signer's,
    and its body is a JSON object."""
    raw = await request.body()
    header = request.headers.get("authorization", "")
    scheme, _, params = header.partition(" ")
    fields = dict(_AUTH.findall(params))
    s = load_secrets()
    path = request.url.path.removeprefix(PREFIX)
    if request.url.query:
        path += f"?{request.url.query}"
    text = raw.decode("utf-8", "replace")
    message = f"{request.method}\n{path}\n{fields.get('timestamp', '')}\n"
    message += f"{fields.get('nonce_str', '')}\n{text}"
    try:
        fresh = abs(time.time() - int(fields.get("timestamp", "0"))) <= MAX_SKEW_S
    except ValueError:
        fresh = False
    mchid = get_settings().wechatpay_mchid
    if (
        scheme != SCHEMA
        or fields.get("mchid") != mchid
        or fields.get("serial_no") != s.merchant_serial_no
        or not fresh
        or not _verify_request(s.merchant_key.public_key(), message, fields.get("signature", ""))
    ):
        raise Refusal(401, "SIGN_ERROR", "签名错误")
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        raise Refusal(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "PARAM_ERROR", "请求体须为 JSON 对象")
    named = body.get("mchid", request.query_params.get("mchid", mchid))
    if named != mchid:
        raise Refusal(400, "MCH_NOT_EXISTS", "mchid 与请求的签名商户不一致")
    return Call(mchid, body)


SignedCall = Annotated[Call, Depends(signed_call)]


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


async def before_answer() -> bool:
    """Latency, then the next injected fault if any: ``error`` is answered 500 at once;
    True for ``lost`` (the call takes effect, then its answer is a 500: raise
    :func:`lost_answer` after acting)."""
    await anyio.sleep(_latency())
    with lock:
        fault = _state.faults.pop(0) if _state.faults else None
    if fault == "timeout":
        await anyio.sleep(TIMEOUT_S + 5)  # the client gives up first
    if fault == "error":
        raise lost_answer()
    return fault == "lost"


def lost_answer() -> Refusal:
    return Refusal(500, "SYSTEM_ERROR", "系统错误")


def now_text() -> str:
    """Now, as WeChat Pay writes it, on the server's clock (which tests move forward)."""
    return clock.now().astimezone().isoformat(timespec="seconds")


def notification(
    event_type: str, resource: dict[str, Any], *, summary: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A notification body and headers exactly as WeChat Pay sends one: the resource
    sealed under the API v3 key, the whole body signed by the platform key."""
    s = load_secrets()
    nonce = secrets.token_urlsafe(9)[:12]
    associated = event_type.split(".")[0].lower()
    sealed = AESGCM(s.apiv3_key.encode()).encrypt(
        nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), associated.encode()
    )
    envelope = {
        "id": secrets.token_hex(18),
        "create_time": now_text(),
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
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": sig_nonce,
        "Wechatpay-Signature": rsa_sign(s.platform_key, f"{stamp}\n{sig_nonce}\n{text}\n"),
        "Wechatpay-Serial": _serial(s),
        "Wechatpay-Signature-Type": SCHEMA,
    }
    return text.encode(), headers


class Delivery(BaseModel):
    """How a control endpoint's notification goes: twice, or held back until released."""

    duplicate: bool = False
    hold: bool = False


def notify(
    url: str,
    event_type: str,
    resource: dict[str, Any],
    *,
    summary: str,
    duplicate: bool = False,
    hold: bool = False,
) -> list[int] | None:
    """Send one notification to ``url`` (twice with ``duplicate``): the answers' status
    codes, or None when ``hold`` keeps it for :func:`release_held`."""
    envelope, headers = notification(event_type, resource, summary=summary)
    deliveries = 2 if duplicate else 1
    if hold:
        with lock:
            _state.held.extend([(url, envelope, headers)] * deliveries)
        return None
    return [_deliver(url, envelope, headers) for _ in range(deliveries)]


def release_held() -> list[int]:
    """Send the notifications held back (late notifications); their answers' statuses."""
    with lock:
        held, _state.held = _state.held, []
    return [_deliver(url, envelope, headers) for url, envelope, headers in held]


def _deliver(url: str, body: bytes, headers: dict[str, str]) -> int:
    try:
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code
    except httpx.HTTPError:
        return 0

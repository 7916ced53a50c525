"""WeChat Pay API v3, the merchant's side: signed requests, verified answers and verified,
decrypted notifications (https://pay.weixin.qq.com/doc/v3/merchant/4012365334).

- A request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..., nonce_str=...,
  signature=..., timestamp=..., serial_no=...``: RSA-SHA256 (PKCS#1 v1.5) with the
  merchant's API key over ``method\\npath?query\\ntimestamp\\nnonce\\nbody\\n``.
- An answer (2xx) and a notification carry ``Wechatpay-Timestamp``, ``-Nonce``,
  ``-Signature`` and ``-Serial``: RSA-SHA256 over ``timestamp\\nnonce\\nbody\\n`` with the
  key the serial names, either a platform certificate's (its serial number in hex) or the
  WeChat Pay public key's (its id, ``PUB_KEY_ID_...``). A serial we do not hold, a bad
  signature or a timestamp more than :data:`MAX_SKEW_S` away from our clock is refused.
- A notification's ``resource`` is AEAD_AES_256_GCM ciphertext under the API v3 key, with
  its nonce and associated data beside it.

The signing, verification and decryption primitives are the maintained ``wechatpayv3``
package's (``wechatpayv3.utils``). Its client (``Core``) is not used: it sends through
``requests`` with a new session per call, downloads certificates in its constructor,
and accepts any timestamp. The exchange is :meth:`WechatPayClient.call` here, on one
kept-alive HTTP client per process, each step within :data:`TIMEOUT_S` (WeChat Pay's base
URL is the operator's setting, never a caller's, so it is not an outbound target to guard).

Calls are paced per merchant (:meth:`WechatPayClient.pace`), across every process.

Errors: an answer WeChat Pay gave (4xx with ``{"code", "message"}``) is final,
:class:`WechatPayRefused`; no answer, a 5xx, 429 or an answer that fails verification
leaves the outcome unknown, :class:`WechatPayUnavailable`, and the caller retries the
same request (the coupon and payment APIs are idempotent by the merchant's request number).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from wechatpayv3.utils import aes_decrypt, rsa_encrypt, rsa_sign, rsa_verify

from gonghui import pacing
from gonghui.errors import DomainError, ServiceUnavailable, UpstreamError
from gonghui.integrations.errors import IntegrationsError
from gonghui.settings import get_settings

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
# An answer or notification stamped further than this from our clock is refused (WeChat
# Pay's own guidance: five minutes).
MAX_SKEW_S = 300
# Each step of an exchange (connect, send, each read) within this.
TIMEOUT_S = 10.0
# WeChat Pay answers are small; a larger one is not WeChat Pay's.
MAX_ANSWER_BYTES = 1 << 20
# A downloaded bill (a day's trades, a stock's coupons used) is read into memory up to this.
MAX_FILE_BYTES = 64 << 20


class WechatPayRefused(DomainError):
    """WeChat Pay answered and refused (its ``code``, e.g. ``NOT_ENOUGH``, in details)."""

    status_code = 502


class WechatPayUnavailable(UpstreamError):
    """No verified answer: the outcome is unknown; send the same request again."""


class NotificationRefused(DomainError):
    """A notification that is not WeChat Pay's, or not as sent (bad signature, unknown
    serial, stale timestamp, tampered ciphertext)."""

    status_code = 401


@dataclass(frozen=True)
class Merchant:
    mchid: str
    # The serial number of the merchant's API certificate (names our key to WeChat Pay).
    serial_no: str
    private_key: RSAPrivateKey
    # The API v3 key (32 ASCII characters): notifications' resources are sealed with it.
    apiv3_key: str
    # Wechatpay-Serial -> the key that verifies what it signs: platform certificates by
    # serial number (hex, upper case) and the WeChat Pay public key by its id.
    verifying_keys: Mapping[str, RSAPublicKey]
    base_url: str


def load_verifying_keys(
    *, public_key_id: str = "", public_key_pem: str = "", certificates_pem: str = ""
) -> dict[str, RSAPublicKey]:
    """The WeChat Pay public key (by its id) and platform certificates (by serial)."""
    keys: dict[str, RSAPublicKey] = {}
    if public_key_id and public_key_pem:
        keys[public_key_id] = _rsa_public(load_pem_public_key(public_key_pem.encode()))
    if certificates_pem.strip():
        for cert in x509.load_pem_x509_certificates(certificates_pem.encode()):
            keys[format(cert.serial_number, "X")] = _rsa_public(cert.public_key())
    return keys


def _rsa_public(key: object) -> RSAPublicKey:
    if not isinstance(key, RSAPublicKey):
        raise ValueError("WeChat Pay keys are RSA keys")
    return key


def configured() -> bool:
    """Whether this deployment has a WeChat Pay merchant (its own, or the simulator's where
    the simulators run)."""
    s = get_settings()
    return bool(s.wechatpay_private_key) or s.simulators_enabled


def configured_merchant() -> Merchant:
    """The merchant from settings; with no private key configured, the simulator's
    generated merchant (development only, where the simulators are mounted). Keys are
    parsed once per distinct setting (a send is a task: parsing PEM for each cost more
    than signing)."""
    s = get_settings()
    if not s.wechatpay_private_key:
        from gonghui.integrations import wechatpay_simulator

        if not s.simulators_enabled:
            raise WechatPayUnavailable(
                IntegrationsError.WECHATPAY_NOT_CONFIGURED, "WeChat Pay is not configured"
            )
        return wechatpay_simulator.development_merchant()
    return _merchant(
        s.wechatpay_mchid,
        s.wechatpay_serial_no,
        s.wechatpay_private_key,
        s.wechatpay_apiv3_key,
        s.wechatpay_public_key_id,
        s.wechatpay_public_key,
        s.wechatpay_platform_certificates,
        s.resolved_wechatpay_base_url,
    )


@functools.lru_cache(maxsize=4)
def _merchant(
    mchid: str,
    serial_no: str,
    private_key_pem: str,
    apiv3_key: str,
    public_key_id: str,
    public_key_pem: str,
    certificates_pem: str,
    base_url: str,
) -> Merchant:
    key = load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("GONGHUI_WECHATPAY_PRIVATE_KEY must be an RSA private key")
    return Merchant(
        mchid=mchid,
        serial_no=serial_no,
        private_key=key,
        apiv3_key=apiv3_key,
        verifying_keys=load_verifying_keys(
            public_key_id=public_key_id,
            public_key_pem=public_key_pem,
            certificates_pem=certificates_pem,
        ),
        base_url=base_url,
    )


def authorization(
    merchant: Merchant, method: str, path: str, body: str, *, timestamp: int, nonce: str
) -> str:
    """The ``Authorization`` header of a request (``path`` with its query string)."""
    message = f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n"
    signature = rsa_sign(merchant.private_key, message)
    return (
        f'{SCHEMA} mchid="{merchant.mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{merchant.serial_no}"'
    )


def verify_signed(merchant: Merchant, headers: Mapping[str, str], body: str) -> None:
    """Check WeChat Pay's signature headers over ``body``; raise NotificationRefused."""
    serial = headers.get("wechatpay-serial", "")
    timestamp = headers.get("wechatpay-timestamp", "")
    nonce = headers.get("wechatpay-nonce", "")
    signature = headers.get("wechatpay-signature", "")
    kind = headers.get("wechatpay-signature-type", SCHEMA)
    if kind != SCHEMA:
        raise _refused(f"unsupported signature type {kind[:40]}")
    key = merchant.verifying_keys.get(serial)
    if key is None:
        raise _refused("unknown Wechatpay-Serial")
    try:
        stamped = int(timestamp)
    except ValueError:
        raise _refused("no Wechatpay-Timestamp") from None
    if abs(time.time() - stamped) > MAX_SKEW_S:
        raise _refused("Wechatpay-Timestamp is too far from our clock")
    if not nonce or not rsa_verify(timestamp, nonce, body, signature, key):
        raise _refused("bad signature")


def _refused(reason: str) -> NotificationRefused:
    return NotificationRefused(IntegrationsError.WECHATPAY_BAD_SIGNATURE, reason)


# WeChat Pay's times are China Standard Time, RFC 3339.
_CST = timezone(timedelta(hours=8))


def wechat_time(at: datetime) -> str:
    """``at`` as WeChat Pay writes times: RFC 3339 in China Standard Time."""
    return at.astimezone(_CST).isoformat(timespec="seconds")


def parse_wechat_time(text: object) -> datetime | None:
    """A time WeChat Pay wrote (RFC 3339 with its offset), in UTC; None if absent or not
    one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at.astimezone(UTC) if at.tzinfo is not None else None


def jsapi_pay_params(merchant: Merchant, *, appid: str, prepay_id: str) -> dict[str, str]:
    """What a page hands to ``wx.requestPayment`` for a JSAPI order: ``paySign`` is
    RSA-SHA256 with the merchant's key over ``appId\ntimeStamp\nnonceStr\npackage\n``
    (https://pay.weixin.qq.com/doc/v3/merchant/4012365341; wechatpayv3's ``Core.sign``)."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
    package = f"prepay_id={prepay_id}"
    return {
        "appId": appid,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": rsa_sign(merchant.private_key, f"{appid}\n{timestamp}\n{nonce}\n{package}\n"),
    }


def sealing_key(merchant: Merchant) -> str:
    """The key id sensitive request fields are sealed for: the WeChat Pay public key's
    (recommended) if we hold it, else a platform certificate's serial."""
    ids = sorted(merchant.verifying_keys, key=lambda k: (not k.startswith("PUB_KEY_ID_"), k))
    if not ids:
        raise _unavailable("no WeChat Pay key to seal sensitive fields for")
    return ids[0]


def seal(merchant: Merchant, serial: str, text: str) -> str:
    """``text`` (a bank account, a name) sealed for WeChat Pay as its API v3 wants
    sensitive fields: RSA-OAEP (SHA-1) under the key ``serial`` names, in base64; the
    request carries ``Wechatpay-Serial: <serial>``."""
    return str(rsa_encrypt(text, merchant.verifying_keys[serial]))


@dataclass(frozen=True)
class Notification:
    id: str
    event_type: str  # e.g. COUPON.USE, TRANSACTION.SUCCESS, REFUND.SUCCESS
    create_time: str
    resource: dict[str, Any]  # decrypted


def parse_notification(merchant: Merchant, headers: Mapping[str, str], body: bytes) -> Notification:
    """A notification WeChat Pay POSTed to us: signature checked over the raw body, then
    the resource decrypted (a tampered ciphertext fails its GCM tag)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _refused("the body is not UTF-8") from None
    verify_signed(merchant, {k.lower(): v for k, v in headers.items()}, text)
    try:
        envelope = json.loads(text)
        resource = envelope["resource"]
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise _refused("unsupported resource algorithm")
        plain = aes_decrypt(
            nonce=str(resource["nonce"]),
            ciphertext=str(resource["ciphertext"]),
            associated_data=str(resource.get("associated_data") or ""),
            apiv3_key=merchant.apiv3_key,
        )
        if plain is None:
            raise _refused("the resource does not decrypt under the API v3 key")
        return Notification(
            id=str(envelope["id"]),
            event_type=str(envelope["event_type"]),
            create_time=str(envelope.get("create_time", "")),
            resource=json.loads(plain),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _refused(f"malformed notification: {type(exc).__name__}") from None


class WechatPayClient:
    """Calls of one merchant; each is one exchange within :data:`TIMEOUT_S`."""

    def __init__(self, merchant: Merchant, *, timeout_s: float = TIMEOUT_S) -> None:
        self.merchant = merchant
        self.timeout_s = timeout_s

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        serial: str | None = None,
    ) -> dict[str, Any]:
        """``path`` (``/v3/...``, with its query) with ``body``; the verified answer.
        ``serial``: the key the body's sensitive fields are sealed for (:func:`seal`)."""
        m = self.merchant
        text = "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Authorization": authorization(
                m, method, path, text, timestamp=int(time.time()), nonce=secrets.token_hex(16)
            ),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "gonghui",
        }
        if serial is not None:
            headers["Wechatpay-Serial"] = serial
        url = m.base_url.rstrip("/") + path
        self.pace()
        try:
            resp = _http().request(
                method,
                url,
                content=text.encode() or None,
                headers=headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise _unavailable(f"no answer: {type(exc).__name__}") from exc
        if len(resp.content) > MAX_ANSWER_BYTES:
            raise _unavailable("an answer too large to be WeChat Pay's")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _unavailable(f"HTTP {resp.status_code}", _error_of(resp))
        if resp.status_code >= 400:
            details = _error_of(resp)
            raise WechatPayRefused(
                IntegrationsError.WECHATPAY_REFUSED,
                f"WeChat Pay refused: {details.get('code')}: {details.get('message')}",
                details,
            )
        try:
            verify_signed(m, {k.lower(): v for k, v in resp.headers.items()}, resp.text)
        except NotificationRefused as exc:
            raise _unavailable(f"an answer that fails verification ({exc.message})") from exc
        if not resp.content:
            return {}
        answer: dict[str, Any] = resp.json()
        return answer

    def pace(self) -> None:
        """Wait for this merchant's turn to call WeChat Pay (``wechatpay_calls_per_s``,
        shared by every process: :mod:`gonghui.pacing`), rather than be answered 429."""
        try:
            pacing.wait(
                f"wechatpay:{self.merchant.mchid}", per_s=get_settings().wechatpay_calls_per_s
            )
        except ServiceUnavailable as exc:
            raise _unavailable("the pace of calls cannot be checked now") from exc

    def download(self, url: str, *, hash_type: str, hash_value: str) -> bytes:
        """A bill file from the ``download_url`` an API answered with, checked against the
        hash that answer gave (file downloads are not signed). Only a URL under the
        merchant's WeChat Pay base URL is followed."""
        m = self.merchant
        base = m.base_url.rstrip("/") + "/"
        if not url.startswith(base):
            raise _unavailable("a download URL outside WeChat Pay")
        path = "/" + url[len(base) :]
        self.pace()
        headers = {
            "Authorization": authorization(
                m, "GET", path, "", timestamp=int(time.time()), nonce=secrets.token_hex(16)
            ),
            "User-Agent": "gonghui",
        }
        content = bytearray()
        try:
            with _http().stream("GET", url, headers=headers, timeout=self.timeout_s) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    if resp.status_code >= 500 or resp.status_code == 429:
                        raise _unavailable(f"HTTP {resp.status_code}", _error_of(resp))
                    details = _error_of(resp)
                    raise WechatPayRefused(
                        IntegrationsError.WECHATPAY_REFUSED,
                        f"WeChat Pay refused the download: {details.get('code')}",
                        details,
                    )
                for chunk in resp.iter_bytes():
                    content.extend(chunk)
                    if len(content) > MAX_FILE_BYTES:
                        raise _unavailable("a bill file larger than we read")
        except httpx.HTTPError as exc:
            raise _unavailable(f"no answer: {type(exc).__name__}") from exc
        if hash_type.upper() != "SHA1":
            raise _unavailable(f"a bill hash of an unknown kind: {hash_type[:16]}")
        if not secrets.compare_digest(hashlib.sha1(content).hexdigest(), hash_value.lower()):
            raise _unavailable("a bill file that does not match its hash")
        return bytes(content)


def parse_bill(content: bytes) -> list[dict[str, str]]:
    """The rows of a bill file (a trade bill, a stock's use flow) by their header's names.

    The file is CSV (UTF-8, optionally with a BOM): a header row, then one row per record
    with every value led by a backtick (so that spreadsheets keep long numbers as text),
    then the summary: a row of totals' names and a row of totals, which are left out."""
    text = content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [name.strip() for name in rows[0]]
    records: list[dict[str, str]] = []
    for row in rows[1:]:
        if not row or not row[0].startswith("`"):
            break  # the summary (its names are not led by a backtick)
        values = [value.strip().removeprefix("`") for value in row]
        records.append(dict(zip(header, values, strict=False)))
    return records


# This process's HTTP clients for WeChat Pay (their connections kept alive): a client made
# per call paid for its TLS context and a new connection each time (14 sends/s from 64
# threads in `make bench W=voucher_grab`). Not one client for every thread either: httpcore
# 1.0.9's pool compares each of its connections with every other on each request and each
# response, and once it holds more than max_keepalive_connections closes an idle one on
# every pass (encode/httpcore#1035, open): with 128 sends in flight that was 22 % of a
# sending worker's GIL time (py-spy --gil), and connections churned. So each thread keeps
# to one of CLIENTS clients, handed out in turn, each with a small pool kept alive whole.
CLIENTS = 8
CLIENT_CONNECTIONS = 16
_clients: list[httpx.Client] = []
_clients_lock = threading.Lock()
_turns = itertools.count()
_thread = threading.local()


def _http() -> httpx.Client:
    """The calling thread's HTTP client for WeChat Pay (see :data:`CLIENTS`)."""
    client: httpx.Client | None = getattr(_thread, "client", None)
    if client is None:
        with _clients_lock:
            if not _clients:
                limits = httpx.Limits(
                    max_connections=CLIENT_CONNECTIONS,
                    max_keepalive_connections=CLIENT_CONNECTIONS,
                )
                _clients.extend(httpx.Client(limits=limits) for _ in range(CLIENTS))
            client = _thread.client = _clients[next(_turns) % CLIENTS]
    return client


def _error_of(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return {
        "status": resp.status_code,
        "code": str(body.get("code", ""))[:64],
        "message": str(body.get("message", ""))[:200],
    }


def _unavailable(reason: str, details: dict[str, Any] | None = None) -> WechatPayUnavailable:
    return WechatPayUnavailable(
        IntegrationsError.WECHATPAY_UNAVAILABLE, f"WeChat Pay: {reason}", details
    )

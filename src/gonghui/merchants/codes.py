"""The code a member shows a cashier to redeem a voucher: signed by us, good for a minute.

``GHV1.<voucher id>.<expiry in POSIX seconds>.<signature>``: upper-case letters, digits and
dots only, so that its QR code uses the compact alphanumeric mode and a scanner that types
it into a field gets it exactly. The signature is HMAC-SHA256 under a key derived from the
token-signing key, cut to 80 bits (base32): a code lives a minute and a cashier's attempts
are rate limited, so forging one is out of reach. A screenshot of a code is worth a minute.
The code names the voucher; whether it may be redeemed is the voucher's own state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gonghui.clock import now
from gonghui.errors import InvalidInput
from gonghui.keys import get_keys
from gonghui.merchants.errors import MerchantsError
from gonghui.types import MAX_BIGINT

CODE_TTL_S = 60
_PREFIX = "GHV1"
_MAX_LENGTH = 64


@dataclass(frozen=True)
class PresentedCode:
    text: str
    expires_at: datetime


def _signature(voucher_id: int, expires: int) -> str:
    key = hmac.new(get_keys().token_signing_key, b"voucher-code", hashlib.sha256).digest()
    digest = hmac.new(key, f"{voucher_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode()


def present(*, voucher_id: int) -> PresentedCode:
    """A fresh code for the voucher, valid for :data:`CODE_TTL_S` seconds."""
    expires_at = now().replace(microsecond=0) + timedelta(seconds=CODE_TTL_S)
    expires = int(expires_at.timestamp())
    text = f"{_PREFIX}.{voucher_id}.{expires}.{_signature(voucher_id, expires)}"
    return PresentedCode(text=text, expires_at=expires_at)


def _invalid() -> InvalidInput:
    return InvalidInput(MerchantsError.CODE_INVALID, "this is not a voucher code of ours")


def read(text: str) -> int:
    """The voucher id a code names; refused if it is not one we signed, or has expired."""
    parts = text.strip().upper().split(".")
    if len(text) > _MAX_LENGTH or len(parts) != 4 or parts[0] != _PREFIX:
        raise _invalid()
    _, voucher, expires, signature = parts
    if not (voucher.isascii() and voucher.isdigit() and expires.isascii() and expires.isdigit()):
        raise _invalid()
    voucher_id, expiry = int(voucher), int(expires)
    if not 1 <= voucher_id <= MAX_BIGINT or expiry > MAX_BIGINT:
        raise _invalid()
    if not hmac.compare_digest(signature, _signature(voucher_id, expiry)):
        raise _invalid()
    if datetime.fromtimestamp(expiry, UTC) <= now():
        raise InvalidInput(
            MerchantsError.CODE_EXPIRED, "the code has expired: ask the member to show it again"
        )
    return voucher_id

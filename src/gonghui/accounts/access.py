"""Access tokens: short-lived HS256 JWTs naming the user and the sign-in session, and
carrying the caller's principal as it was read when the token was issued (the ``prn``
claim, see :mod:`gonghui.accounts.principal`).

This module only signs and verifies them; starting, refreshing and revoking sign-ins is
:mod:`gonghui.accounts.tokens`, which sits above the principal.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from gonghui.accounts.errors import AccountsError
from gonghui.clock import now
from gonghui.errors import Unauthenticated
from gonghui.keys import get_keys
from gonghui.settings import get_settings

_ALGORITHM = "HS256"
_LEEWAY_S = 5


class _CheckedOnceHMAC(HMACAlgorithm):
    """HS256 whose key is checked once per key, not once per token.

    PyJWT prepares the key on every decode, and preparing an HMAC key means refusing one
    that parses as a public key or certificate (two ``cryptography`` parse attempts): a
    fifth of verifying a token, paid again for every new token with the same key. The
    same check runs here, once for each key object; only a key that passed it is kept.
    """

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._checked: tuple[object, bytes] | None = None

    def prepare_key(self, key: str | bytes) -> bytes:
        checked = self._checked
        if checked is not None and checked[0] is key:
            return checked[1]
        prepared = super().prepare_key(key)
        self._checked = (key, prepared)
        return prepared


_JWT = jwt.PyJWT()
# PyJWT's own verification with the key check above (its signer, PyJWS, is reached through
# PyJWT's attribute: the one instance this module signs and verifies with).
_JWT._jws.unregister_algorithm(_ALGORITHM)
_JWT._jws.register_algorithm(_ALGORITHM, _CheckedOnceHMAC())
# iat and exp are checked against the server clock (_check_expiry), not the wall clock.
_OPTIONS: Any = {
    "require": ["exp", "iat", "sub", "sid"],
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "verify_aud": False,
    "verify_iss": False,
}


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: str
    issued_at: float  # POSIX seconds
    payload: dict[str, Any]


def issue_access_token(
    *,
    user_id: int,
    session_id: str,
    issued: datetime | None = None,
    principal: dict[str, Any] | None = None,
) -> str:
    """``principal``: who the caller is as read at ``issued`` (the ``prn`` claim, see
    :mod:`gonghui.accounts.principal`)."""
    issued = issued or now()
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "sid": session_id,
        "typ": "access",
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=get_settings().access_token_ttl_s)).timestamp()),
    }
    if principal is not None:
        payload["prn"] = principal
    return _JWT.encode(payload, get_keys().token_signing_key, algorithm=_ALGORITHM)


# Access tokens verified lately, by the token's exact text: a client sends the same token
# with every request for its lifetime, and checking the signature and parsing the claims
# again each time cost more than the rest of authenticating it. Only the very string that
# was verified (under the signing key it was verified with) hits; expiry is checked on
# every use. Bounded: when full, the older half goes (insertion order).
_VERIFIED_MAX = 8192
_verified: dict[str, tuple[bytes, AccessClaims, int]] = {}  # token -> (key, claims, exp)
_verified_lock = threading.Lock()


def decode_access_token(token: str) -> AccessClaims:
    """The claims of a valid, unexpired access token; raises Unauthenticated."""
    signing_key = get_keys().token_signing_key
    hit = _verified.get(token)
    if hit is not None and hit[0] is signing_key:
        _check_expiry(hit[2])
        return hit[1]
    claims, exp = _decode(token, signing_key)
    with _verified_lock:
        if len(_verified) >= _VERIFIED_MAX:
            for old in list(itertools.islice(_verified, _VERIFIED_MAX // 2)):
                del _verified[old]
        _verified[token] = (signing_key, claims, exp)
    return claims


def forget_verified() -> None:
    """Forget the verified tokens (tests; a signing key replaced under the process)."""
    with _verified_lock:
        _verified.clear()


def _check_expiry(exp: int) -> None:
    # Against the server clock (which tests can move), not the wall clock.
    if exp + _LEEWAY_S < now().timestamp():
        raise Unauthenticated(AccountsError.TOKEN_EXPIRED, "access token expired")


def _decode(token: str, signing_key: bytes) -> tuple[AccessClaims, int]:
    try:
        payload = _JWT.decode(token, signing_key, algorithms=[_ALGORITHM], options=_OPTIONS)
    except jwt.PyJWTError as exc:
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "invalid access token") from exc
    if payload.get("typ") != "access":
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "not an access token")
    exp = int(payload["exp"])
    _check_expiry(exp)
    claims = AccessClaims(
        user_id=int(payload["sub"]),
        session_id=str(payload["sid"]),
        issued_at=float(payload["iat"]),
        payload=payload,
    )
    return claims, exp

"""Access and refresh tokens.

An access token is a short-lived HS256 JWT naming the user and the sign-in session. A
refresh token is an opaque random string stored only as its SHA-256; each use rotates it.
Presenting a refresh token that was already used means it was copied: the whole session
(the token family) is revoked, so both the thief and the victim must sign in again.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import AuthSession, RefreshToken, SessionKind, User
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import Unauthenticated
from gonghui.keys import get_keys
from gonghui.settings import get_settings

_ALGORITHM = "HS256"
_LEEWAY_S = 5
_JWT = jwt.PyJWT()
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
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user_id: int


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: str
    issued_at: float  # POSIX seconds
    payload: dict[str, Any]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


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
    return jwt.encode(payload, get_keys().token_signing_key, algorithm=_ALGORITHM)


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


def access_token_for(session: Session, *, user_id: int, session_id: str) -> str:
    """An access token carrying its principal as the database has it now."""
    from gonghui.accounts import principal  # local: principal imports this module

    issued = now()  # before the read: the claims are at least this fresh
    found = principal.load(session.connection(), user_id=user_id, session_id=session_id)
    return issue_access_token(
        user_id=user_id, session_id=session_id, issued=issued, principal=principal.claims_of(found)
    )


def _new_refresh(session: Session, session_id: str) -> str:
    token = secrets.token_urlsafe(32)
    ttl = timedelta(seconds=get_settings().refresh_token_ttl_s)
    session.add(
        RefreshToken(session_id=session_id, token_hash=_digest(token), expires_at=now() + ttl)
    )
    return token


def start_session(
    session: Session,
    *,
    user: User,
    kind: SessionKind = SessionKind.MEMBER,
    channel: str = "web",
    ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair:
    """Sign ``user`` in: a new token family. Only the staff sign-in passes
    ``kind=SessionKind.STAFF``; every refresh of the family keeps its kind."""
    if not user.is_active:
        raise Unauthenticated(AccountsError.USER_DISABLED, "this account is disabled")
    auth = AuthSession(
        id=secrets.token_hex(16),
        user_id=user.id,
        kind=kind,
        channel=channel,
        ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    )
    session.add(auth)
    user.last_login_at = now()
    refresh = _new_refresh(session, auth.id)
    session.flush()
    return TokenPair(
        access_token=access_token_for(session, user_id=user.id, session_id=auth.id),
        refresh_token=refresh,
        expires_in=get_settings().access_token_ttl_s,
        session_id=auth.id,
        user_id=user.id,
    )


def rotate(session: Session, *, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair; detects reuse."""
    row = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _digest(refresh_token))
    )
    if row is None:
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "unknown refresh token")
    auth = session.get(AuthSession, row.session_id)
    assert auth is not None
    if auth.revoked_at is not None:
        raise Unauthenticated(AccountsError.SESSION_REVOKED, "this sign-in has been revoked")
    # Claim the token atomically: of two concurrent uses exactly one wins.
    claimed = rowcount(
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
            .values(used_at=now())
        )
    )
    if claimed != 1:
        revoke_session(session, session_id=auth.id, reason="refresh_reuse")
        # keep_changes: the revocation must stand although the request fails.
        raise Unauthenticated(
            AccountsError.REFRESH_REUSED,
            "refresh token already used; every token of this sign-in has been revoked",
            keep_changes=True,
        )
    if row.expires_at < now():
        raise Unauthenticated(AccountsError.TOKEN_EXPIRED, "refresh token expired")
    user = session.get(User, auth.user_id)
    assert user is not None
    if not user.is_active:
        raise Unauthenticated(AccountsError.USER_DISABLED, "this account is disabled")
    refresh = _new_refresh(session, auth.id)
    return TokenPair(
        access_token=access_token_for(session, user_id=user.id, session_id=auth.id),
        refresh_token=refresh,
        expires_in=get_settings().access_token_ttl_s,
        session_id=auth.id,
        user_id=user.id,
    )


def revoke_session(session: Session, *, session_id: str, reason: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now(), revoke_reason=reason)
    )
    _changed(session, [session_id])


def revoke_all(session: Session, *, user_id: int, reason: str = "logout_all") -> int:
    """Log out everywhere: every session of the user."""
    ids = list(
        session.scalars(
            select(AuthSession.id).where(
                AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
            )
        )
    )
    if ids:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id.in_(ids))
            .values(revoked_at=now(), revoke_reason=reason)
        )
        _changed(session, ids)
    return len(ids)


def _changed(session: Session, session_ids: list[str]) -> None:
    from gonghui.accounts import principal  # local: principal imports this module

    principal.changed(session, session_ids=session_ids)

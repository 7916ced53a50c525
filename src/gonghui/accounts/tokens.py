"""Sign-in sessions and their token pairs: start, refresh (rotate), revoke.

The access token of a pair is signed by :mod:`gonghui.accounts.access` and carries the
principal read here at issue. A refresh token is an opaque random string stored only as its
SHA-256; each use rotates it. Presenting a refresh token that was already used means it was
copied: the whole session (the token family) is revoked, so both the thief and the victim
must sign in again.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.accounts import principal
from gonghui.accounts.access import issue_access_token
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import AuthSession, RefreshToken, SessionKind, User
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import Unauthenticated
from gonghui.settings import get_settings


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user_id: int


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def access_token_for(session: Session, *, user_id: int, session_id: str) -> str:
    """An access token carrying its principal as the database has it now."""
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
    principal.changed(session, session_ids=session_ids)

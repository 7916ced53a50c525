"""Who is calling: a bearer access token resolved to user, staff grants and membership.

Resolution is cached per sign-in session for a couple of seconds, so the hot paths do not
pay four queries per request. A revocation in this process clears the entry at once; other
processes see it when their entry expires (``PRINCIPAL_CACHE_TTL_S``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import AuthSession, User
from gonghui.accounts.tokens import decode_access_token
from gonghui.clock import local_day
from gonghui.errors import Unauthenticated
from gonghui.members.models import Membership, MembershipStatus, RosterEntry
from gonghui.orgs.models import Org, StaffRole
from gonghui.tenancy import Actor, Grant

PRINCIPAL_CACHE_TTL_S = 2.0
# Entries are kept per sign-in session; at this many, expired ones go (and, if all are
# live, the older half), so a long-running server's cache stays bounded.
PRINCIPAL_CACHE_MAX = 10_000


@dataclass(frozen=True)
class MemberInfo:
    membership_id: int
    roster_entry_id: int
    org_id: int
    org_path: str
    tags: tuple[str, ...]
    # Since when they belong to the union: the roster's join date, else their verification.
    member_since: date


@dataclass(frozen=True)
class Principal:
    user_id: int
    session_id: str
    is_platform_admin: bool
    grants: tuple[Grant, ...]
    member: MemberInfo | None

    def actor(self, ip: str | None = None) -> Actor:
        return Actor(
            user_id=self.user_id,
            is_platform_admin=self.is_platform_admin,
            grants=self.grants,
            ip=ip,
        )


_cache: dict[str, tuple[float, Principal]] = {}
_cache_lock = threading.Lock()


def forget_sessions(session_ids: list[str]) -> None:
    with _cache_lock:
        for sid in session_ids:
            _cache.pop(sid, None)


def forget_all() -> None:
    """Drop every cached principal (the org tree changed shape)."""
    with _cache_lock:
        _cache.clear()


def forget_user(user_id: int) -> None:
    """Drop cached principals of a user whose roles or membership just changed."""
    with _cache_lock:
        for sid in [sid for sid, (_, p) in _cache.items() if p.user_id == user_id]:
            _cache.pop(sid, None)


def resolve(session: Session, token: str) -> Principal:
    claims = decode_access_token(token)
    with _cache_lock:
        hit = _cache.get(claims.session_id)
    if hit is not None and hit[0] > time.monotonic() and hit[1].user_id == claims.user_id:
        return hit[1]
    principal = load(session, user_id=claims.user_id, session_id=claims.session_id)
    now = time.monotonic()
    with _cache_lock:
        if len(_cache) >= PRINCIPAL_CACHE_MAX:
            _prune(now)
        _cache[claims.session_id] = (now + PRINCIPAL_CACHE_TTL_S, principal)
    return principal


def _prune(now: float) -> None:
    """Drop expired entries; if that frees too little, the older half (insertion order)."""
    for sid in [sid for sid, (until, _) in _cache.items() if until <= now]:
        del _cache[sid]
    if len(_cache) >= PRINCIPAL_CACHE_MAX:
        for sid in list(_cache)[: len(_cache) // 2 + 1]:
            del _cache[sid]


# A request's sign-in, read with three prebuilt statements (most requests miss the cache:
# a burst of members each sign in once). Tuples, not ORM objects: nothing here is written.
_SIGN_IN = (
    select(AuthSession.user_id, AuthSession.revoked_at, User.is_active, User.is_platform_admin)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.id == bindparam("sid"))
)
_GRANTS = (
    select(StaffRole.org_id, Org.path, StaffRole.role)
    .join(Org, Org.id == StaffRole.org_id)
    .where(StaffRole.user_id == bindparam("uid"), Org.archived_at.is_(None))
)
_MEMBERSHIP = (
    select(
        Membership.id,
        Membership.roster_entry_id,
        Membership.org_id,
        Membership.tags,
        Membership.verified_at,
        Org.path,
        RosterEntry.join_date,
    )
    .join(Org, Org.id == Membership.org_id)
    .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
    .where(Membership.user_id == bindparam("uid"), Membership.status == MembershipStatus.VERIFIED)
)


def load(session: Session, *, user_id: int, session_id: str) -> Principal:
    connection = session.connection()
    auth = connection.execute(_SIGN_IN, {"sid": session_id}).first()
    if auth is None or auth.user_id != user_id:
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "unknown sign-in session")
    if auth.revoked_at is not None:
        raise Unauthenticated(AccountsError.SESSION_REVOKED, "this sign-in has been revoked")
    if not auth.is_active:
        raise Unauthenticated(AccountsError.USER_DISABLED, "this account is disabled")
    grants = tuple(
        Grant(org_id=org_id, org_path=path, role=role)
        for org_id, path, role in connection.execute(_GRANTS, {"uid": user_id})
    )
    row = connection.execute(_MEMBERSHIP, {"uid": user_id}).first()
    member = None
    if row is not None:
        member = MemberInfo(
            membership_id=row.id,
            roster_entry_id=row.roster_entry_id,
            org_id=row.org_id,
            org_path=row.path,
            tags=tuple(str(t) for t in row.tags or ()),
            member_since=row.join_date or local_day(row.verified_at),
        )
    return Principal(
        user_id=user_id,
        session_id=session_id,
        is_platform_admin=auth.is_platform_admin,
        grants=grants,
        member=member,
    )

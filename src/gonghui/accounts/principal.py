"""Who is calling: a bearer access token resolved to user, staff grants and membership.

An access token carries its principal as it was read when the token was issued, signed
with it, so a request normally resolves with no database read and no thread hand-off.
What makes that safe is the change feed (:mod:`gonghui.invalidation`): every change to what
a sign-in resolves to (a revoked sign-in, a user's staff roles or membership, the org tree)
is recorded with :func:`changed` under the topic ``accounts.principal`` (the org tree under
its own, ``orgs.tree``), and this module keeps, from the feed, the time of the latest change
for each user and sign-in and for everyone.

A principal, from a token's claims or loaded from the database, is used only while the feed
is current and no change to its user or sign-in is stamped later than ``CLOCK_MARGIN_S``
before it was read (the margin covers the commit itself and the clocks of other servers);
otherwise it is loaded afresh and kept for ``PRINCIPAL_CACHE_TTL_S``. So a change applies in
the process that makes it at its commit, and in every other within
``invalidation.FEED_MAX_LAG_S``.

Staff roles and the platform-admin flag belong to staff sign-ins only (``SessionKind``): a
sign-in by phone code or WeChat resolves to the user's membership and nothing more, however
many roles the user holds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.accounts.access import AccessClaims, decode_access_token, forget_verified
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import AuthSession, SessionKind, User
from gonghui.clock import local_day, now
from gonghui.errors import Unauthenticated
from gonghui.members.models import Membership, MembershipStatus, RosterEntry
from gonghui.orgs.models import ORG_TREE_TOPIC, Org, Role, StaffRole
from gonghui.settings import get_settings
from gonghui.tenancy import Actor, Grant

TOPIC = "accounts.principal"
CLOCK_MARGIN_S = 5.0
# A principal loaded from the database (the token's claims were stale or absent) is kept
# per sign-in session this long, or until a change to it is seen.
PRINCIPAL_CACHE_TTL_S = 60.0
# At this many entries, expired ones go (and, if all are live, the older half).
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
    # When they verified (risk control watches accounts verified within the hour); None
    # in a token issued before it was carried.
    verified_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    user_id: int
    session_id: str
    kind: SessionKind
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


def claims_of(principal: Principal) -> dict[str, Any]:
    """The principal as the ``prn`` claim of an access token (next to ``sub`` and ``sid``)."""
    out: dict[str, Any] = {"knd": principal.kind.value}
    if principal.is_platform_admin:
        out["adm"] = True
    if principal.grants:
        out["grt"] = [[g.org_id, g.org_path, str(g.role)] for g in principal.grants]
    if (m := principal.member) is not None:
        out["mbr"] = [
            m.membership_id,
            m.roster_entry_id,
            m.org_id,
            m.org_path,
            list(m.tags),
            m.member_since.isoformat(),
            None if m.verified_at is None else m.verified_at.isoformat(),
        ]
    return out


def _from_claims(claims: AccessClaims) -> Principal | None:
    """The principal a token carries; None for a token issued without one, or before
    sessions had kinds (its grants may come from a member sign-in: read it afresh)."""
    payload = claims.payload.get("prn")
    if not isinstance(payload, dict) or "knd" not in payload:
        return None
    try:
        member = None
        if (m := payload.get("mbr")) is not None:
            member = MemberInfo(
                membership_id=int(m[0]),
                roster_entry_id=int(m[1]),
                org_id=int(m[2]),
                org_path=str(m[3]),
                tags=tuple(str(t) for t in m[4]),
                member_since=date.fromisoformat(m[5]),
                verified_at=datetime.fromisoformat(m[6]) if len(m) > 6 and m[6] else None,
            )
        return Principal(
            user_id=claims.user_id,
            session_id=claims.session_id,
            kind=SessionKind(payload["knd"]),
            is_platform_admin=bool(payload.get("adm", False)),
            grants=tuple(
                Grant(org_id=int(g[0]), org_path=str(g[1]), role=Role(g[2]))
                for g in payload.get("grt", ())
            ),
            member=member,
        )
    except (KeyError, IndexError, TypeError, ValueError):
        return None  # a shape this version does not know: read it from the database


def _clock() -> float:
    return now().timestamp()


@dataclass
class _Seen:
    """The time of the latest change this process has seen for each user and sign-in (and
    for everyone)."""

    users: dict[int, float] = field(default_factory=dict)
    sessions: dict[str, float] = field(default_factory=dict)
    everyone: float = float("-inf")

    def unchanged(self, user_id: int, session_id: str, since: float) -> bool:
        return (
            self.everyone < since
            and self.users.get(user_id, since - 1) < since
            and self.sessions.get(session_id, since - 1) < since
        )

    def note(self, user_id: int | None, session_id: str | None, at: float) -> None:
        if user_id is None and session_id is None:
            self.everyone = max(self.everyone, at)
        if user_id is not None:
            self.users[user_id] = max(self.users.get(user_id, at), at)
        if session_id is not None:
            self.sessions[session_id] = max(self.sessions.get(session_id, at), at)

    def prune(self, before: float) -> None:
        self.users = {user: at for user, at in self.users.items() if at >= before}
        self.sessions = {sid: at for sid, at in self.sessions.items() if at >= before}


_seen = _Seen()
_cache: dict[str, tuple[float, Principal]] = {}  # session id -> (read at, principal)
_lock = threading.Lock()  # guards _seen and _cache


def _forget() -> None:
    global _seen
    with _lock:
        _cache.clear()
        _seen = _Seen()
    forget_verified()


def changed(
    session: Session,
    *,
    user_id: int | None = None,
    session_ids: list[str] | None = None,
    everyone: bool = False,
) -> None:
    """Record in this transaction that what a user's sign-ins (or some sign-ins, or every
    sign-in) resolve to has changed."""
    if everyone:
        invalidation.changed(session, TOPIC)
    elif session_ids:
        for sid in session_ids:
            invalidation.changed(session, TOPIC, f"session:{sid}")
    elif user_id is not None:
        invalidation.changed(session, TOPIC, f"user:{user_id}")
    else:
        raise ValueError("changed() needs user_id, session_ids or everyone")


def _note(change: invalidation.Change) -> None:
    kind, _, ident = (change.key or "").partition(":")
    with _lock:
        if kind == "user" and ident.isdigit():
            _seen.note(int(ident), None, change.at)
        elif kind == "session":
            _seen.note(None, ident, change.at)
        else:  # everyone, the org tree, or a key this version does not know
            _seen.note(None, None, change.at)


def _retention_s() -> float:
    """How long a seen change matters: a token issued before it has expired by then."""
    return get_settings().access_token_ttl_s + CLOCK_MARGIN_S + PRINCIPAL_CACHE_TTL_S + 60


# A process starting reads back the changes that tokens still valid may predate.
invalidation.subscribe(TOPIC, on_change=_note, forget=_forget, replay_s=_retention_s())
invalidation.subscribe(ORG_TREE_TOPIC, on_change=_note, forget=_forget)


def claims(token: str) -> AccessClaims:
    """The verified claims of an access token (no I/O); raises Unauthenticated."""
    return decode_access_token(token)


def fresh(access: AccessClaims) -> Principal | None:
    """The principal of ``access`` if it is known to be current without reading the
    database: from the token itself or this process's cache. No I/O."""
    from_token = _from_claims(access)
    if not invalidation.current():
        return None
    with _lock:
        uid, sid = access.user_id, access.session_id
        if from_token is not None and _seen.unchanged(uid, sid, access.issued_at - CLOCK_MARGIN_S):
            return from_token
        hit = _cache.get(sid)
        if (
            hit is not None
            and hit[1].user_id == uid
            and hit[0] > _clock() - PRINCIPAL_CACHE_TTL_S
            and _seen.unchanged(uid, sid, hit[0] - CLOCK_MARGIN_S)
        ):
            return hit[1]
    return None


def resolve(session: Session, token: str) -> Principal:
    access = claims(token)
    return fresh(access) or reload(session.connection(), access)


def reload(connection: Connection, access: AccessClaims) -> Principal:
    """The principal of ``access``, catching up with the feed first when it is due and
    reading the database when neither the token nor the cache is current."""
    if invalidation.catch_up(connection):
        with _lock:
            _seen.prune(_clock() - _retention_s())
    found = fresh(access)
    if found is not None:
        return found
    read_at = _clock()
    principal = load(connection, user_id=access.user_id, session_id=access.session_id)
    with _lock:
        if len(_cache) >= PRINCIPAL_CACHE_MAX:
            _prune_cache(read_at)
        _cache[access.session_id] = (read_at, principal)
    return principal


def _prune_cache(at: float) -> None:
    """Drop expired entries; if that frees too little, the older half (insertion order)."""
    for sid in [sid for sid, (read, _) in _cache.items() if read <= at - PRINCIPAL_CACHE_TTL_S]:
        del _cache[sid]
    if len(_cache) >= PRINCIPAL_CACHE_MAX:
        for sid in list(_cache)[: len(_cache) // 2 + 1]:
            del _cache[sid]


# A request's sign-in, read with three prebuilt statements. Tuples, not ORM objects:
# nothing here is written.
_SIGN_IN = (
    select(
        AuthSession.user_id,
        AuthSession.kind,
        AuthSession.revoked_at,
        User.is_active,
        User.is_platform_admin,
    )
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


def load(connection: Connection, *, user_id: int, session_id: str) -> Principal:
    """The principal as the database has it now; raises Unauthenticated for a sign-in
    that is unknown, revoked or of a disabled account."""
    auth = connection.execute(_SIGN_IN, {"sid": session_id}).first()
    if auth is None or auth.user_id != user_id:
        raise Unauthenticated(AccountsError.TOKEN_INVALID, "unknown sign-in session")
    if auth.revoked_at is not None:
        raise Unauthenticated(AccountsError.SESSION_REVOKED, "this sign-in has been revoked")
    if not auth.is_active:
        raise Unauthenticated(AccountsError.USER_DISABLED, "this account is disabled")
    kind = SessionKind(auth.kind)
    staff = kind is SessionKind.STAFF
    grants = (
        tuple(
            Grant(org_id=org_id, org_path=path, role=role)
            for org_id, path, role in connection.execute(_GRANTS, {"uid": user_id})
        )
        if staff
        else ()
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
            verified_at=row.verified_at,
        )
    return Principal(
        user_id=user_id,
        session_id=session_id,
        kind=kind,
        is_platform_admin=staff and auth.is_platform_admin,
        grants=grants,
        member=member,
    )


def standing_actor(db: Connection | Session, *, user_id: int) -> Actor | None:
    """A staff member's rights as the database holds them now, whatever sign-in they use:
    what something they approved earlier (an open-platform app's access to their org)
    still rests on. None for an unknown or disabled account."""
    user = db.execute(
        select(User.is_active, User.is_platform_admin).where(User.id == user_id)
    ).first()
    if user is None or not user.is_active:
        return None
    grants = tuple(
        Grant(org_id=org_id, org_path=path, role=Role(role))
        for org_id, path, role in db.execute(_GRANTS, {"uid": user_id})
    )
    return Actor(user_id=user_id, is_platform_admin=user.is_platform_admin, grants=grants)

"""Bearer tokens presented to the open APIs (``/open/v1``) and to userinfo.

A token answers only while it, its family and its client stand, and while its member is
still one the client serves: revoked, expired, of a disabled client or of a member moved
out of the client's subtree, it is refused with one answer (``invalid_token``) that says
no more.

What a token grants is held per process (:data:`_grants`, one entry per token, its claims
computed once): reading ``/open/v1/me`` from the database each time took five queries and
a thread hop, 0.089 of the ping (`make bench W=open_api`); held, a read is a hash and a
lookup. The entries live under the change feed
(``gonghui.invalidation``): under the principal topic by user, so a revocation, a transfer,
a new phone (``accounts.identities``) or a disabled account drops that user's tokens at the
commit here and within a second in every other process; a change to a client or to the
org tree drops them all. :data:`GRANT_TTL_S` is only a safety net: with 60 s, every held
token was read again each minute, which with 10,000 members' tokens in use cost a third of
the open API's throughput (`make bench W=open_api`, steady state).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from gonghui import invalidation, ratelimit
from gonghui.accounts import principal
from gonghui.clock import now
from gonghui.errors import BearerRefused, RateLimited, ScopeMissing
from gonghui.openplatform import identity, scopes
from gonghui.openplatform.clients import CLIENT_TOPIC, digest
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.models import Client, Token
from gonghui.orgs.models import ORG_TREE_TOPIC, Org
from gonghui.settings import get_settings

GRANT_TTL_S = 600.0


@dataclass(frozen=True)
class Grant:
    """What a bearer token grants: its client, its member (None for a client's own token),
    its scope, and the member's claims under that scope."""

    client_pk: int
    user_id: int | None
    scope: str
    expires_at: datetime
    claims: dict[str, Any] | None

    def require(self, scope: str) -> None:
        if scope not in scopes.parse(self.scope):
            raise ScopeMissing(
                OpenPlatformError.SCOPE_MISSING, f"this call needs the scope {scope}", scope=scope
            )

    def member_claims(self, scope: str) -> dict[str, Any]:
        """The member who granted the token, as the client may see them; ``scope`` must
        be among what they granted."""
        self.require(scope)
        if self.claims is None:
            raise BearerRefused(
                OpenPlatformError.NOT_A_MEMBER_TOKEN, "this call needs a member's token"
            )
        return self.claims


def _user_key(_digest: bytes, grant: Grant) -> str:
    return f"user:{grant.user_id}" if grant.user_id is not None else "client-token"


_grants: invalidation.TopicCache[bytes, Grant] = invalidation.TopicCache(
    principal.TOPIC,
    key_of=_user_key,
    ttl_s=GRANT_TTL_S,
    cleared_by=(ORG_TREE_TOPIC, CLIENT_TOPIC),
    max_entries=20_000,
)


def _refused() -> BearerRefused:
    return BearerRefused(OpenPlatformError.TOKEN_INVALID, "the access token is not valid")


def _digest(authorization: str | None) -> bytes:
    kind, _, value = (authorization or "").partition(" ")
    if kind.lower() != "bearer" or not value.strip():
        raise _refused()
    return digest(value.strip())


def _live(grant: Grant) -> Grant:
    if grant.expires_at <= now():
        raise _refused()
    return grant


def held(authorization: str | None) -> Grant | None:
    """The grant of a token this process has read, if the feed is current (no database
    work); None when it must be read (:func:`authenticate`)."""
    hit = _grants.get(_digest(authorization))
    return None if hit is None else _live(hit)


def authenticate(db: Connection | Session, authorization: str | None) -> Grant:
    """The grant of an ``Authorization: Bearer <token>`` header: held, else read in three
    statements (the token with its client, the member, their union's chain)."""
    digest = _digest(authorization)
    return _live(_grants.read_through(db, digest, lambda: _read_grant(db, digest)))


def _read_grant(db: Connection | Session, digest: bytes) -> Grant:
    row = db.execute(
        select(
            Token.user_id,
            Token.scope,
            Token.expires_at,
            Token.revoked_at,
            Client.id,
            Client.client_id,
            Client.disabled_at,
            Org.path,
        )
        .join(Client, Client.id == Token.client_pk)
        .join(Org, Org.id == Client.org_id)
        .where(Token.access_hash == digest)
    ).first()
    if row is None or row.revoked_at is not None or row.disabled_at is not None:
        raise _refused()
    if row.expires_at <= now():
        raise _refused()
    claims = None
    if row.user_id is not None:
        member = identity.member_view(db, row.user_id)
        if member is None or (member.verified and not identity.serves(row.path, member)):
            raise _refused()  # disabled since, or moved out of the client's unions
        claims = identity.claims(db, row.client_id, member, row.scope)
    return Grant(row.id, row.user_id, row.scope, row.expires_at, claims)


@dataclass(frozen=True)
class Quota:
    """A client's calls this minute, as the answer's ``RateLimit-*`` headers tell it."""

    limit: int
    used: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "RateLimit-Policy": f"{self.limit};w=60",
        }


def charge(grant: Grant) -> Quota:
    """Count a call of the grant's client (all its tokens together), refusing it past the
    client's calls a minute. Counted by ``ratelimit.tally`` (Redis when configured, else
    each process's memory: a hot read, no database write per call)."""
    limit = get_settings().open_api_calls_per_minute
    (used,) = ratelimit.tally([ratelimit.Window(f"open-api:{grant.client_pk}", 60)])
    quota = Quota(limit, used)
    if used > limit:
        raise OverQuota(quota)
    return quota


class OverQuota(RateLimited):
    def __init__(self, quota: Quota) -> None:
        super().__init__(
            OpenPlatformError.RATE_LIMITED,
            f"this app may call the open APIs {quota.limit} times a minute",
            retry_after_s=60,
        )
        self.quota = quota

    def headers(self) -> dict[str, str]:
        return {**super().headers(), **self.quota.headers()}


def tokens_changed(session: Session, *, user_id: int | None) -> None:
    """Record in this transaction that tokens of ``user_id`` (None: a client's own) were
    revoked: every process drops what it holds of them."""
    if user_id is None:
        invalidation.changed(session, CLIENT_TOPIC)
    else:
        principal.changed(session, user_id=user_id)

"""Bearer tokens presented to the open APIs (``/open/v1``) and to userinfo.

A token answers only while it, its family and its client stand: revoked, expired or of a
disabled client, it is refused with one answer (``invalid_token``) that says no more.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.clock import now
from gonghui.errors import BearerRefused, ScopeMissing
from gonghui.openplatform import identity, scopes
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.identity import MemberView
from gonghui.openplatform.models import Client, Token
from gonghui.openplatform.provider import digest


@dataclass(frozen=True)
class Bearer:
    token: Token
    client: Client
    member: MemberView | None  # None for a client's own token (client credentials)

    def require(self, scope: str) -> None:
        if scope not in scopes.parse(self.token.scope):
            raise ScopeMissing(
                OpenPlatformError.SCOPE_MISSING, f"this call needs the scope {scope}", scope=scope
            )

    def require_member(self, scope: str) -> MemberView:
        """The member who granted the token; ``scope`` must be among what they granted."""
        self.require(scope)
        if self.member is None:
            raise BearerRefused(
                OpenPlatformError.NOT_A_MEMBER_TOKEN, "this call needs a member's token"
            )
        return self.member


def _refused() -> BearerRefused:
    return BearerRefused(OpenPlatformError.TOKEN_INVALID, "the access token is not valid")


def authenticate(session: Session, authorization: str | None) -> Bearer:
    """The bearer of an ``Authorization: Bearer <token>`` header."""
    kind, _, value = (authorization or "").partition(" ")
    if kind.lower() != "bearer" or not value.strip():
        raise _refused()
    row = session.execute(
        select(Token, Client)
        .join(Client, Client.id == Token.client_pk)
        .where(Token.access_hash == digest(value.strip()))
    ).first()
    if row is None:
        raise _refused()
    token, client = row
    if token.revoked_at is not None or token.expires_at <= now() or client.disabled_at:
        raise _refused()
    member = None
    if token.user_id is not None:
        member = identity.member_view(session, token.user_id)
        if member is None:  # the account was disabled since
            raise _refused()
    return Bearer(token, client, member)

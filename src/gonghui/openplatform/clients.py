"""OAuth clients: an org's developers register them, see them and rotate their secrets.

Staff holding ``apps.manage`` over the client's org manage it; outside their subtree a
client answers "not found". A confidential client's secret is shown once and stored as
its SHA-256. Redirect URIs are compared exactly (no prefix, no wildcard): https, or http
to this machine's loopback for native apps and development (RFC 8252 §7.3).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from enum import StrEnum
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import InvalidInput, field_error
from gonghui.openplatform import scopes
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.models import Client
from gonghui.tenancy import Actor, Permission, get_scoped, require_org, scoped

MAX_REDIRECT_URIS = 10
# Any change to a client (disabled, scopes narrowed) drops every grant processes hold
# (openplatform.resource).
CLIENT_TOPIC = "openplatform.client"


class ClientKind(StrEnum):
    CONFIDENTIAL = "confidential"
    PUBLIC = "public"


GRANT_TYPES = {
    ClientKind.CONFIDENTIAL: ["authorization_code", "refresh_token", "client_credentials"],
    ClientKind.PUBLIC: ["authorization_code", "refresh_token"],
}


def digest(value: str) -> bytes:
    """How secrets, codes and tokens are stored: 256-bit random strings, so SHA-256."""
    return hashlib.sha256(value.encode()).digest()


def secret_matches(client: Client, secret: str) -> bool:
    return client.secret_hash is not None and hmac.compare_digest(
        client.secret_hash, digest(secret)
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_redirect_uris(uris: list[str]) -> list[str]:
    """``uris`` if each is an absolute https URI (or http to loopback) without a fragment."""
    if not uris or len(uris) > MAX_REDIRECT_URIS:
        raise InvalidInput(
            OpenPlatformError.BAD_REDIRECT_URI,
            f"between 1 and {MAX_REDIRECT_URIS} redirect URIs",
            [field_error("redirect_uris", OpenPlatformError.BAD_REDIRECT_URI, "1 to 10 URIs")],
        )
    for i, uri in enumerate(uris):
        try:
            parts = urlsplit(uri)
            host = parts.hostname or ""
        except ValueError:
            parts, host = None, ""
        ok = (
            parts is not None
            and bool(host)
            and not parts.fragment
            and (parts.scheme == "https" or (parts.scheme == "http" and _loopback(host)))
        )
        if not ok:
            raise InvalidInput(
                OpenPlatformError.BAD_REDIRECT_URI,
                f"redirect URI {i + 1} must be https (or http to localhost), without a fragment",
                [
                    field_error(
                        f"redirect_uris.{i}",
                        OpenPlatformError.BAD_REDIRECT_URI,
                        "https, or http to localhost; no fragment",
                    )
                ],
            )
    return list(dict.fromkeys(uris))


def check_scope(scope: str) -> str:
    names = scopes.parse(scope)
    if bad := scopes.unknown(names):
        raise InvalidInput(
            OpenPlatformError.BAD_SCOPE,
            f"unknown scope {bad[0]}",
            [field_error("scope", OpenPlatformError.BAD_SCOPE, f"unknown scope {bad[0]}")],
        )
    return " ".join(names)


def register(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    name: str,
    kind: ClientKind,
    redirect_uris: list[str],
    scope: str,
) -> tuple[Client, str | None]:
    """A new client of ``org_id`` and its secret (None for a public client: it has none)."""
    org = require_org(session, actor, Permission.APPS_MANAGE, org_id)
    secret = secrets.token_urlsafe(32) if kind is ClientKind.CONFIDENTIAL else None
    client = Client(
        client_id="ghoc_" + secrets.token_urlsafe(18),
        org_id=org.id,
        name=name,
        kind=kind.value,
        secret_hash=digest(secret) if secret else None,
        redirect_uris=check_redirect_uris(redirect_uris),
        grant_types=GRANT_TYPES[kind],
        scope=check_scope(scope),
        created_by=actor.user_id,
    )
    session.add(client)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="openplatform.client.register",
        org_id=org.id,
        subject_type="oauth_client",
        subject_id=client.id,
        details={"name": name, "kind": kind.value, "scope": client.scope},
    )
    return client, secret


def get(session: Session, *, actor: Actor, client_pk: int) -> Client:
    return get_scoped(session, Client, client_pk, actor, Permission.APPS_MANAGE)


def list_clients(session: Session, *, actor: Actor) -> list[Client]:
    stmt = scoped(select(Client), actor, Permission.APPS_MANAGE)
    return list(session.scalars(stmt.order_by(Client.id)))


def update(
    session: Session,
    *,
    actor: Actor,
    client_pk: int,
    name: str | None = None,
    redirect_uris: list[str] | None = None,
    scope: str | None = None,
    disabled: bool | None = None,
) -> Client:
    """Change a client; a narrower scope or a removed URI holds from the next request
    (tokens already issued keep the scope they were granted until they expire or are
    revoked; disabling a client revokes none but refuses all of them)."""
    client = get(session, actor=actor, client_pk=client_pk)
    details: dict[str, object] = {}
    if name is not None and name != client.name:
        details["name"] = {"from": client.name, "to": name}
        client.name = name
    if redirect_uris is not None:
        client.redirect_uris = check_redirect_uris(redirect_uris)
        details["redirect_uris"] = client.redirect_uris
    if scope is not None:
        checked = check_scope(scope)
        details["scope"] = {"from": client.scope, "to": checked}
        client.scope = checked
    if disabled is not None and disabled != (client.disabled_at is not None):
        client.disabled_at = now() if disabled else None
        details["disabled"] = disabled
    invalidation.changed(session, CLIENT_TOPIC)
    audit.record(
        session,
        actor=actor,
        action="openplatform.client.update",
        org_id=client.org_id,
        subject_type="oauth_client",
        subject_id=client.id,
        details=details,
    )
    return client


def rotate_secret(session: Session, *, actor: Actor, client_pk: int) -> str:
    """A new secret for a confidential client; the old one stops working on commit."""
    client = get(session, actor=actor, client_pk=client_pk)
    if client.kind != ClientKind.CONFIDENTIAL:
        raise InvalidInput(OpenPlatformError.PUBLIC_CLIENT, "a public client has no secret")
    secret = secrets.token_urlsafe(32)
    client.secret_hash = digest(secret)
    audit.record(
        session,
        actor=actor,
        action="openplatform.client.rotate_secret",
        org_id=client.org_id,
        subject_type="oauth_client",
        subject_id=client.id,
    )
    return secret


def by_client_id(session: Session, client_id: str) -> Client | None:
    """An enabled client by its public id (what the protocol names it by)."""
    client = session.scalar(select(Client).where(Client.client_id == client_id[:48]))
    if client is None or client.disabled_at is not None:
        return None
    return client

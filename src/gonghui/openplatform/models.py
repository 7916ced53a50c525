"""OAuth clients of the open platform, what members granted them, and the provider's keys.

Secrets, codes and tokens are 256-bit random strings stored only as their SHA-256 (a
plain hash suffices for values nobody chose); the signing keys' private halves are sealed
with the deployment's encryption key.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Client(Base):
    """An application registered by an org: it signs in members of that org's subtree."""

    __tablename__ = "openplatform_client"

    id: Mapped[IdPk]
    client_id: Mapped[str] = mapped_column(String(48), unique=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # "confidential" (a back end holding its secret) or "public" (H5, mini program, app).
    kind: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    redirect_uris: Mapped[list[Any]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The scopes it may ask for, space-separated.
    scope: Mapped[str] = mapped_column(String(1000), default="")
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
    disabled_at: Mapped[datetime | None]


class AuthorizationCode(Base):
    __tablename__ = "openplatform_authorization_code"

    id: Mapped[IdPk]
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    redirect_uri: Mapped[str] = mapped_column(String(1000))
    scope: Mapped[str] = mapped_column(String(1000))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[datetime]
    expires_at: Mapped[datetime]
    # Set when exchanged; a second exchange revokes what the first one issued.
    used_at: Mapped[datetime | None]
    family: Mapped[str | None] = mapped_column(String(32))


class Token(Base):
    """One access token and its refresh token. Rotation issues a new row of the same
    ``family``; presenting a rotated refresh token revokes the whole family."""

    __tablename__ = "openplatform_token"

    id: Mapped[IdPk]
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"), index=True)
    # None for a client's own token (client credentials).
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    scope: Mapped[str] = mapped_column(String(1000))
    access_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    refresh_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime | None]
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Consent(Base):
    """What a member granted a client; asked again only for more."""

    __tablename__ = "openplatform_consent"
    __table_args__ = (UniqueConstraint("user_id", "client_pk"),)

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"))
    scope: Mapped[str] = mapped_column(String(1000))
    granted_at: Mapped[datetime] = mapped_column(default=now)


class SigningKey(Base):
    """An RSA key signing ``id_token``s. The newest signs; a retired key stays in the JWKS
    until every token it signed has expired."""

    __tablename__ = "openplatform_signing_key"

    id: Mapped[IdPk]
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now)
    retired_at: Mapped[datetime | None]


class AccessLogEntry(Base):
    """One call of a client to the open APIs (kept 30 days)."""

    __tablename__ = "openplatform_access"

    id: Mapped[IdPk]
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"))
    at: Mapped[datetime] = mapped_column(index=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(200))
    status: Mapped[int]
    ms: Mapped[int]


Index("ix_openplatform_access_client_id", AccessLogEntry.client_pk, AccessLogEntry.id)


class UsageDay(Base):
    """A client's calls on one day (Asia/Shanghai by default, as every "per day")."""

    __tablename__ = "openplatform_usage_day"
    __table_args__ = (UniqueConstraint("client_pk", "day"),)

    id: Mapped[IdPk]
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"))
    day: Mapped[date]
    calls: Mapped[int] = mapped_column(BigInteger, default=0)


class WebhookEndpoint(Base):
    """Where a client receives the union's events it subscribed to (Standard Webhooks);
    its deliveries are the triggers' (``baas_delivery``, one engine)."""

    __tablename__ = "openplatform_webhook_endpoint"

    id: Mapped[IdPk]
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    # The event names subscribed to (gonghui.openplatform.webhooks.WebhookEvent).
    events: Mapped[list[Any]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    # AES-GCM sealed ``whsec_`` secret: the signer needs it in the clear.
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    enabled: Mapped[bool] = mapped_column(default=True)
    max_attempts: Mapped[int] = mapped_column(default=8)
    created_at: Mapped[datetime] = mapped_column(default=now)
    # Deleted endpoints stay (their deliveries name them) but are never shown or sent to.
    deleted_at: Mapped[datetime | None]


class ServiceCard(Base):
    """A client's card in the members' service catalogue (employment, transport, education,
    life): members of the orgs it is shown to open it from the H5 and arrive at the
    provider, which signs them in through the provider's own OAuth request (OpenID Connect
    third-party-initiated login, ``launch_uri``)."""

    __tablename__ = "openplatform_service_card"

    id: Mapped[IdPk]
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"), unique=True)
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(300), default="")
    launch_uri: Mapped[str] = mapped_column(String(1000))
    # Orgs (each within the client's subtree) whose members see it; empty: the whole subtree.
    shown_to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    icon_key: Mapped[str | None] = mapped_column(String(200))
    listed: Mapped[bool] = mapped_column(default=False)
    updated_by: Mapped[int | None] = mapped_column(BigId)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class ServiceOpenDay(Base):
    """How many times members of one org opened one card on one day."""

    __tablename__ = "openplatform_service_open_day"
    __table_args__ = (UniqueConstraint("card_id", "org_id", "day"),)

    id: Mapped[IdPk]
    card_id: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_service_card.id"))
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    day: Mapped[date]
    opens: Mapped[int] = mapped_column(BigInteger, default=0)


class StaffApproval(Base):
    """A staff member's approval of a scope that acts for the client's org (its members'
    roster, its activities). Approved by someone holding the scope's permission over the
    client's org; that is checked again at each use, so an approval never outlives its
    approver's rights. Withdrawn rows stay, for the record."""

    __tablename__ = "openplatform_staff_approval"

    id: Mapped[IdPk]
    client_pk: Mapped[int] = mapped_column(BigId, ForeignKey("openplatform_client.id"), index=True)
    scope: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"))
    approved_at: Mapped[datetime] = mapped_column(default=now)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("accounts_user.id"))

"""Users, their linked identities, sign-in sessions (refresh-token families) and OTP codes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Provider(StrEnum):
    PASSWORD = "password"
    PHONE = "phone"
    WECHAT_MINI = "wechat_mini"  # mini program (jscode2session)
    WECHAT_OFFICIAL = "wechat_official"  # official-account web-page OAuth
    WECHAT_APP = "wechat_app"  # mobile-app OAuth
    # The person's WeChat open-platform account (subject = unionid, app_id = ""). Its row
    # is the anchor that makes "same unionid, same user" hold under concurrency: the
    # unique (provider, app_id, subject) lets exactly one user claim a unionid.
    WECHAT_UNIONID = "wechat_unionid"
    OIDC = "oidc"


class SessionKind(StrEnum):
    """How a sign-in was started, which bounds what it may do. Only the staff sign-in
    (password, then TOTP where enabled) carries staff roles and the platform-admin flag;
    a phone code or WeChat proves a member channel, not a staff member's credentials."""

    STAFF = "staff"
    MEMBER = "member"


class User(Base):
    __tablename__ = "accounts_user"

    id: Mapped[IdPk]
    display_name: Mapped[str] = mapped_column(String(100), default="")
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    is_platform_admin: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_login_at: Mapped[datetime | None]


class Identity(Base):
    """One way to sign in as a user. WeChat openids are per app; a unionid is per platform
    account and is what ties the same person arriving through two channels together."""

    __tablename__ = "accounts_identity"
    __table_args__ = (UniqueConstraint("provider", "app_id", "subject"),)

    id: Mapped[IdPk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    provider: Mapped[Provider] = mapped_column(String(24))
    app_id: Mapped[str] = mapped_column(String(64), default="")
    subject: Mapped[str] = mapped_column(String(128))
    unionid: Mapped[str | None] = mapped_column(String(128), index=True)
    secret_hash: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_used_at: Mapped[datetime | None]


class AuthSession(Base):
    """A sign-in: the family of refresh tokens rotated from one login."""

    __tablename__ = "accounts_session"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("accounts_user.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="web")
    # Sessions from before kinds existed are member sessions (see the migration).
    kind: Mapped[SessionKind] = mapped_column(
        String(16), default=SessionKind.MEMBER, server_default=SessionKind.MEMBER.value
    )
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=now)
    revoked_at: Mapped[datetime | None]
    revoke_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(Base):
    __tablename__ = "accounts_refresh_token"

    id: Mapped[IdPk]
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("accounts_session.id"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OtpCode(Base):
    __tablename__ = "accounts_otp_code"
    __table_args__ = (
        Index("ix_accounts_otp_code_phone_created", "phone_hash", "created_at"),
        Index("ix_accounts_otp_code_ip_created", "ip", "created_at"),
    )

    id: Mapped[IdPk]
    phone_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    purpose: Mapped[str] = mapped_column(String(16), default="login")
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    consumed_at: Mapped[datetime | None]


class TotpCredential(Base):
    """A staff member's TOTP second factor (RFC 6238). Pending until confirmed with a code
    (``enabled_at`` set). The secret is sealed with the PII key; ``last_step`` is the time
    step of the last accepted code, so that a code is never accepted twice."""

    __tablename__ = "accounts_totp"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("accounts_user.id"), primary_key=True, autoincrement=False
    )
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    enabled_at: Mapped[datetime | None]
    last_step: Mapped[int | None]
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)


class WeChatAppKind(StrEnum):
    MINI = "mini"  # mini program
    OFFICIAL = "official"  # official account (web-page OAuth)
    MOBILE = "mobile"  # mobile app (open-platform OAuth)


class OrgWeChatApp(Base):
    """A union's own WeChat app (its official account, mini program or mobile app), besides
    the deployment's. Sign-ins through it are WeChat identities of its ``appid``; all of a
    person's apps under one open-platform account share their unionid, so they stay one
    user. The app secret is sealed with the PII key."""

    __tablename__ = "accounts_org_wechat_app"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    kind: Mapped[WeChatAppKind] = mapped_column(String(16))
    appid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=now)
    disabled_at: Mapped[datetime | None]

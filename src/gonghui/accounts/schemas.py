from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gonghui.accounts.models import SessionKind, WeChatAppKind
from gonghui.types import Id


class PasswordLogin(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokenRead(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user_id: int


class GrantRead(BaseModel):
    org_id: int
    org_path: str
    role: str


class MembershipBrief(BaseModel):
    membership_id: int
    org_id: int


class MeRead(BaseModel):
    user_id: int
    display_name: str
    phone: str | None
    # What this sign-in may do: staff roles and the admin flag only with a staff sign-in.
    sign_in: SessionKind
    is_platform_admin: bool
    roles: list[GrantRead]
    membership: MembershipBrief | None


# A channel tag: where the sign-in came from (h5, mini, official, app, channels, ...).
ChannelTag = Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class SmsSend(BaseModel):
    phone: str = Field(min_length=1, max_length=20, examples=["13800138000"])
    purpose: Literal["login", "link"] = "login"


class SmsSent(BaseModel):
    phone: str = Field(description="masked")
    expires_in: int
    resend_after: int


class SmsLogin(BaseModel):
    phone: str = Field(min_length=1, max_length=20)
    code: str = Field(pattern=r"^\d{6}$")
    channel: ChannelTag = None


class PhoneLink(BaseModel):
    phone: str = Field(min_length=1, max_length=20)
    code: str = Field(pattern=r"^\d{6}$")


class WeChatMiniLogin(BaseModel):
    code: str = Field(min_length=1, max_length=256, description="wx.login code")
    phone_code: str | None = Field(
        default=None, min_length=1, max_length=256, description="getPhoneNumber code"
    )
    channel: ChannelTag = None
    appid: str | None = Field(
        default=None,
        max_length=32,
        description="the app the sign-in came through (a union's own); empty: the deployment's",
    )


class WeChatOAuthLogin(BaseModel):
    code: str = Field(min_length=1, max_length=256)
    channel: ChannelTag = None
    appid: str | None = Field(
        default=None,
        max_length=32,
        description="the app the sign-in came through (a union's own); empty: the deployment's",
    )


class WeChatAppLogin(BaseModel):
    code: str = Field(min_length=1, max_length=256)
    appid: str | None = Field(
        default=None,
        max_length=32,
        description="the app the sign-in came through (a union's own); empty: the deployment's",
    )


class WeChatAppRegistration(BaseModel):
    org_id: Id
    kind: WeChatAppKind
    appid: str = Field(min_length=1, max_length=32, description="wx and 16 hex digits")
    secret: str = Field(min_length=1, max_length=64, description="the app's AppSecret")
    name: str = Field(min_length=1, max_length=64)


class WeChatAppState(BaseModel):
    enabled: bool


class WeChatAppRead(BaseModel):
    """A union's WeChat app; its secret is never read back."""

    id: int
    org_id: int
    kind: WeChatAppKind
    appid: str
    name: str
    enabled: bool
    created_at: datetime


class IdentityRead(BaseModel):
    provider: str
    app_id: str
    channel: str | None
    created_at: datetime


class PhoneRead(BaseModel):
    user_id: int
    phone: str | None


class TotpChallengeRead(BaseModel):
    """The password was right; send ``challenge`` and a code to ``/auth/totp/login``."""

    totp_required: Literal[True] = True
    challenge: str
    expires_in: int


class TotpCode(BaseModel):
    code: str = Field(min_length=6, max_length=8)


class TotpLogin(BaseModel):
    challenge: str = Field(min_length=10, max_length=1000)
    code: str = Field(min_length=6, max_length=8)


class TotpEnrolmentRead(BaseModel):
    secret: str
    otpauth_uri: str


class TotpStatusRead(BaseModel):
    enabled: bool

"""The gonghui open platform from Python: sign a member in with OpenID Connect
(:class:`OAuth` / :class:`AsyncOAuth`) and read the open APIs (:class:`OpenClient` /
:class:`AsyncOpenClient`). Result types are generated from ``/open/v1/openapi.json``
(:mod:`gonghui_sdk.models`)."""

from gonghui_sdk.client import AsyncOpenClient, OpenClient, TokenCallback
from gonghui_sdk.errors import (
    ApiError,
    GonghuiError,
    InvalidTokenError,
    OAuthError,
    RateLimitedError,
)
from gonghui_sdk.models import (
    OpenActivityPage,
    OpenActivityRead,
    OpenMember,
    OpenMembership,
    OpenPrize,
    OpenUnion,
    OpenVoucher,
    OpenWallet,
)
from gonghui_sdk.oauth import (
    AsyncOAuth,
    AuthorizationRequest,
    Discovery,
    OAuth,
    TokenSet,
    pkce_pair,
)

__all__ = [
    "ApiError",
    "AsyncOAuth",
    "AsyncOpenClient",
    "AuthorizationRequest",
    "Discovery",
    "GonghuiError",
    "InvalidTokenError",
    "OAuth",
    "OAuthError",
    "OpenActivityPage",
    "OpenActivityRead",
    "OpenClient",
    "OpenMember",
    "OpenMembership",
    "OpenPrize",
    "OpenUnion",
    "OpenVoucher",
    "OpenWallet",
    "RateLimitedError",
    "TokenCallback",
    "TokenSet",
    "pkce_pair",
]

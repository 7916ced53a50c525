"""Sign a member in with OpenID Connect (authorization code + PKCE S256, state and nonce),
and the token endpoint's other grants: refresh (rotating the refresh token), client
credentials, revocation. :class:`OAuth` is synchronous, :class:`AsyncOAuth` the same with
``await``; both build the same requests (:class:`_Endpoints`) and read the same answers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from gonghui_sdk.errors import OAuthError, raise_for_answer

#: An access token this close to its expiry counts as expired (the clocks may differ).
EXPIRY_LEEWAY_S = 30


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint issued. ``expires_at`` is this machine's Unix time."""

    access_token: str
    expires_at: float
    scope: str
    token_type: str = "Bearer"
    refresh_token: str | None = None
    id_token: str | None = None
    #: The ``id_token``'s claims, checked against the sign-in's nonce (when one came).
    id_claims: dict[str, Any] = field(default_factory=dict)

    def expired(self, *, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at - EXPIRY_LEEWAY_S

    @classmethod
    def from_answer(cls, body: Mapping[str, Any]) -> TokenSet:
        return cls(
            access_token=str(body["access_token"]),
            expires_at=time.time() + float(body.get("expires_in", 0)),
            scope=str(body.get("scope", "")),
            token_type=str(body.get("token_type", "Bearer")),
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
        )


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the member, and what to keep (in their session) for the callback."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class Discovery:
    """The provider's ``/.well-known/openid-configuration``."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    revocation_endpoint: str
    jwks_uri: str
    raw: dict[str, Any]

    @classmethod
    def from_document(cls, raw: dict[str, Any]) -> Discovery:
        names = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint")
        more = ("revocation_endpoint", "jwks_uri")
        return cls(**{n: str(raw[n]) for n in (*names, *more)}, raw=raw)


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def pkce_pair() -> tuple[str, str]:
    """A code verifier (RFC 7636 §4.1) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _unverified_claims(id_token: str) -> dict[str, Any]:
    """The ``id_token``'s payload. Its signature is not checked here: it came straight from
    the token endpoint over the connection this client opened, which OpenID Connect Core
    §3.1.3.7 (6) accepts in place of the signature; iss, aud and nonce are checked."""
    payload = id_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


class _Endpoints:
    """The requests of one client to one provider, and the reading of their answers."""

    def __init__(
        self,
        discovery: Discovery,
        *,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str | None,
    ) -> None:
        self.discovery = discovery
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri

    def authorization_request(
        self, scope: str, *, prompt: str | None = None, **extra: str
    ) -> AuthorizationRequest:
        if self.redirect_uri is None:
            raise ValueError("a sign-in needs the client's redirect_uri")
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **({"prompt": prompt} if prompt else {}),
            **extra,
        }
        url = f"{self.discovery.authorization_endpoint}?{urlencode(params)}"
        return AuthorizationRequest(url, state, nonce, verifier)

    def _form(self, form: dict[str, str], url: str | None = None) -> httpx.Request:
        """A back-channel POST, the client authenticated as it was registered: HTTP Basic
        with a secret, or its ``client_id`` alone (a public client)."""
        headers = {"Accept": "application/json"}
        if self.client_secret is None:
            form = {**form, "client_id": self.client_id}
        else:
            basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        url = url or self.discovery.token_endpoint
        return httpx.Request("POST", url, data=form, headers=headers)

    def code_request(
        self, callback: str | Mapping[str, str], request: AuthorizationRequest
    ) -> httpx.Request:
        """The exchange of the code the callback (its URL or query) carries, once its state
        matches the sign-in's."""
        if isinstance(callback, str):
            callback = dict(parse_qsl(urlsplit(callback).query))
        if "error" in callback:
            raise OAuthError(callback["error"], callback.get("error_description"))
        if not secrets.compare_digest(callback.get("state", ""), request.state):
            raise OAuthError("invalid_state", "the callback's state is not this sign-in's")
        if "code" not in callback:
            raise OAuthError("invalid_request", "the callback carries no code")
        form = {
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": self.redirect_uri or "",
            "code_verifier": request.code_verifier,
        }
        return self._form(form)

    def refresh_request(self, refresh_token: str, scope: str | None) -> httpx.Request:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._form(form | ({"scope": scope} if scope else {}))

    def client_credentials_request(self, scope: str) -> httpx.Request:
        if self.client_secret is None:
            raise ValueError("client credentials need a confidential client's secret")
        return self._form({"grant_type": "client_credentials", "scope": scope})

    def revoke_request(self, token: str, hint: str | None) -> httpx.Request:
        form = {"token": token} | ({"token_type_hint": hint} if hint else {})
        return self._form(form, self.discovery.revocation_endpoint)

    def tokens(self, response: httpx.Response, nonce: str | None = None) -> TokenSet:
        raise_for_answer(response)
        tokens = TokenSet.from_answer(response.json())
        if tokens.id_token is None:
            return tokens
        claims = _unverified_claims(tokens.id_token)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if claims.get("iss") != self.discovery.issuer or self.client_id not in audiences:
            raise OAuthError("invalid_id_token", "the id_token is not for this client")
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce")), nonce):
            raise OAuthError("invalid_nonce", "the id_token's nonce is not this sign-in's")
        return replace(tokens, id_claims=claims)


class OAuth(_Endpoints):
    """One client of the provider at ``issuer``: ``OAuth.discover(issuer, client_id=...)``."""

    def __init__(
        self,
        discovery: Discovery,
        *,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            discovery, client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri
        )
        self.http = http or httpx.Client(timeout=30)

    @classmethod
    def discover(
        cls,
        issuer: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        http: httpx.Client | None = None,
    ) -> Self:
        http = http or httpx.Client(timeout=30)
        answer = http.get(discovery_url(issuer))
        raise_for_answer(answer)
        discovery = Discovery.from_document(answer.json())
        return cls(
            discovery,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            http=http,
        )

    def exchange_code(
        self, callback: str | Mapping[str, str], request: AuthorizationRequest
    ) -> TokenSet:
        return self.tokens(self.http.send(self.code_request(callback, request)), request.nonce)

    def refresh(self, refresh_token: str, *, scope: str | None = None) -> TokenSet:
        """New tokens; the refresh token is rotated (keep the new one, the old one is spent)."""
        return self.tokens(self.http.send(self.refresh_request(refresh_token, scope)))

    def client_credentials(self, scope: str) -> TokenSet:
        return self.tokens(self.http.send(self.client_credentials_request(scope)))

    def revoke(self, token: str, *, token_type_hint: str | None = None) -> None:
        """RFC 7009: a refresh token takes its access tokens with it."""
        raise_for_answer(self.http.send(self.revoke_request(token, token_type_hint)))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncOAuth(_Endpoints):
    """:class:`OAuth` with ``await``: ``await AsyncOAuth.discover(issuer, client_id=...)``."""

    def __init__(
        self,
        discovery: Discovery,
        *,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            discovery, client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri
        )
        self.http = http or httpx.AsyncClient(timeout=30)

    @classmethod
    async def discover(
        cls,
        issuer: str,
        *,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> Self:
        http = http or httpx.AsyncClient(timeout=30)
        answer = await http.get(discovery_url(issuer))
        raise_for_answer(answer)
        discovery = Discovery.from_document(answer.json())
        return cls(
            discovery,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            http=http,
        )

    async def exchange_code(
        self, callback: str | Mapping[str, str], request: AuthorizationRequest
    ) -> TokenSet:
        answer = await self.http.send(self.code_request(callback, request))
        return self.tokens(answer, request.nonce)

    async def refresh(self, refresh_token: str, *, scope: str | None = None) -> TokenSet:
        return self.tokens(await self.http.send(self.refresh_request(refresh_token, scope)))

    async def client_credentials(self, scope: str) -> TokenSet:
        return self.tokens(await self.http.send(self.client_credentials_request(scope)))

    async def revoke(self, token: str, *, token_type_hint: str | None = None) -> None:
        raise_for_answer(await self.http.send(self.revoke_request(token, token_type_hint)))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

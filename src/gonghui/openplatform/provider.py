"""The OAuth 2.0 / OpenID Connect provider, on Authlib's authorization server.

Grants: authorization code with PKCE (S256, required of every client, RFC 9700 §2.1.1)
and OpenID Connect ``id_token``s; refresh tokens rotated on each use, a reused one
revoking its whole family (RFC 9700 §4.14.2); client credentials for confidential
clients. Endpoints: revocation (RFC 7009) and introspection (RFC 7662). Authlib speaks
the protocol; this module supplies storage, the session and the web adapter.

One :class:`Provider` serves one request: it holds that request's database session.
Codes and tokens are random and stored as SHA-256; a code or a refresh token is claimed
by a conditional update, so of two concurrent uses exactly one wins.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode
from joserfc.jwk import RSAKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.openplatform import approvals, clients, identity, keys, resource, scopes
from gonghui.openplatform.clients import ClientKind, digest
from gonghui.openplatform.identity import MemberView
from gonghui.openplatform.models import AuthorizationCode, Client, Token
from gonghui.orgs.models import Org
from gonghui.settings import get_settings

CODE_TTL_S = 300
ACCESS_TOKEN_TTL_S = 900
REFRESH_TOKEN_TTL_S = 30 * 86400


def issuer() -> str:
    return get_settings().resolved_public_base_url


# -- Authlib's views of our rows -------------------------------------------------------


class OAuthClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, row: Client) -> None:
        self.row = row

    @property
    def public(self) -> bool:
        return self.row.kind == ClientKind.PUBLIC

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # every request names its redirect URI (OpenID Connect requires it)

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(scopes.parse(self.row.scope))
        return " ".join(s for s in scopes.parse(scope) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return clients.secret_matches(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none" and endpoint in ("token", "revocation")
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


class OAuthCode(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str] | None:
        return None


class OAuthToken(TokenMixin):  # type: ignore[misc]
    """A token row, seen as the access or the refresh token it was presented as."""

    def __init__(self, row: Token, *, refresh: bool) -> None:
        self.row = row
        self.refresh = refresh

    def check_client(self, client: OAuthClient) -> bool:
        return bool(self.row.client_pk == client.row.id)

    def get_scope(self) -> str:
        return self.row.scope

    def expires_at(self) -> datetime:
        if self.refresh:
            assert self.row.refresh_expires_at is not None
            return self.row.refresh_expires_at
        return self.row.expires_at

    def get_expires_in(self) -> int:
        return max(0, int((self.expires_at() - now()).total_seconds()))

    def is_expired(self) -> bool:
        return self.expires_at() <= now()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or (self.refresh and self.row.rotated_at is not None)


# -- grants ------------------------------------------------------------------------------


class _Grants:
    """What every grant of ours reads: the provider that made it."""

    server: Provider

    @property
    def db(self) -> Session:
        return self.server.session


class AuthorizationCodeGrant(_Grants, grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        # PKCE for every client, S256 only (RFC 9700 §2.1.1): CodeChallenge below checks
        # the form; here its presence.
        data = self.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256",
                state=self.request.payload.state,
                redirect_uri=redirect_uri,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        view: MemberView = request.user
        data = request.payload.data
        self.db.add(
            AuthorizationCode(
                code_hash=digest(code),
                client_pk=request.client.row.id,
                user_id=view.user_id,
                redirect_uri=request.payload.redirect_uri,
                scope=" ".join(
                    scopes.member_scopes(
                        scopes.parse(request.client.get_allowed_scope(request.payload.scope))
                    )
                ),
                nonce=(data.get("nonce") or None),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=self.server.auth_time or now(),
                expires_at=now() + timedelta(seconds=CODE_TTL_S),
            )
        )
        self.db.flush()

    def query_authorization_code(self, code: str, client: OAuthClient) -> OAuthCode | None:
        row = self.db.scalar(
            select(AuthorizationCode).where(
                AuthorizationCode.code_hash == digest(code),
                AuthorizationCode.client_pk == client.row.id,
            )
        )
        if row is None or row.expires_at <= now():
            return None
        claimed = rowcount(
            self.db.execute(
                update(AuthorizationCode)
                .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
                .values(used_at=now())
            )
        )
        if claimed != 1:
            # A code used twice was stolen: what the first use issued goes too (RFC 6749
            # §4.1.2). The answer is an error; the revocation is committed regardless.
            self.db.refresh(row)
            if row.family is not None:
                revoke_family(self.db, row.family)
            return None
        return OAuthCode(row)

    def delete_authorization_code(self, authorization_code: OAuthCode) -> None:
        pass  # claimed (used_at) in query_authorization_code; kept to detect a replay

    def authenticate_user(self, authorization_code: OAuthCode) -> MemberView | None:
        return self.server.member(authorization_code.row.user_id)


class RefreshTokenGrant(_Grants, grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> OAuthToken | None:
        row = self.db.scalar(select(Token).where(Token.refresh_hash == digest(refresh_token)))
        client: OAuthClient = self.request.client
        if row is None or row.client_pk != client.row.id or row.revoked_at is not None:
            return None
        asked = set(scopes.parse(self.request.payload.scope))
        if not asked <= set(scopes.parse(row.scope)):
            return None  # before the claim: a bad request does not spend the token
        claimed = rowcount(
            self.db.execute(
                update(Token)
                .where(Token.id == row.id, Token.rotated_at.is_(None))
                .values(rotated_at=now())
            )
        )
        if claimed != 1:
            revoke_family(self.db, row.family)  # a rotated token again: it was copied
            return None
        token = OAuthToken(row, refresh=True)
        return None if token.is_expired() else token

    def authenticate_user(self, refresh_token: OAuthToken) -> MemberView | None:
        """The member, unless disabled or moved out of the client's unions since (then the
        refresh fails as the open APIs would refuse the token)."""
        user_id = refresh_token.row.user_id
        view = None if user_id is None else self.server.member(user_id)
        if view is None or not view.verified:
            return view
        client_org = self.db.get(Org, self.request.client.row.org_id)
        return view if client_org and identity.serves(client_org.path, view) else None

    def revoke_old_credential(self, refresh_token: OAuthToken) -> None:
        pass  # rotated when claimed above


class ClientCredentialsGrant(_Grants, grants.ClientCredentialsGrant):  # type: ignore[misc]
    """A client's own token: the client scopes it asks for (all it holds if none), never a
    member's."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client
        named = self.request.payload.scope
        names = scopes.client_scopes(
            scopes.parse(client.get_allowed_scope(named or client.row.scope))
        )
        # A scope acting for the org only once staff approved it (and its approver still
        # holds the right): asked for by name without it, the request is refused; asked
        # for by default (no scope named), it is left out.
        if needing := scopes.staff_approved(names):
            approved = approvals.approved_scopes(self.db, client_pk=client.row.id)
            if named and (missing := [n for n in needing if n not in approved]):
                raise InvalidScopeError(f"{missing[0]} awaits a staff member's approval")
            names = [n for n in names if n not in needing or n in approved]
        if not names:  # a token that could read nothing is refused, not issued empty
            raise InvalidScopeError("the client holds no scope a client's own token carries")
        scope = " ".join(names)
        token = self.generate_token(scope=scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class OpenIDConnect(OpenIDCode):  # type: ignore[misc]
    """``id_token``s for codes asked with ``openid``: RS256 by the current key, the
    subject pairwise, the claims of the granted scope."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return (
            self.provider.session.scalar(
                select(AuthorizationCode.id).where(
                    AuthorizationCode.client_pk == request.client.row.id,
                    AuthorizationCode.nonce == nonce,
                )
            )
            is not None
        )

    def get_client_algorithm(self, client: OAuthClient) -> str:
        return keys.ALGORITHM

    def get_encode_header(self, client: OAuthClient) -> dict[str, str]:
        return {"alg": keys.ALGORITHM, "kid": self.provider.signing_key()[0]}

    def resolve_client_private_key(self, client: OAuthClient) -> RSAKey:
        return self.provider.signing_key()[1]

    def get_client_claims(self, client: OAuthClient) -> dict[str, Any]:
        at = int(time.time())
        return {
            "iss": issuer(),
            "aud": [client.get_client_id()],
            "iat": at,
            "exp": at + keys.ID_TOKEN_TTL_S,
        }

    def generate_user_info(self, user: MemberView, scope: str) -> dict[str, Any]:
        client: OAuthClient = self.provider.current_client
        return identity.claims(self.provider.session, client.get_client_id(), user, scope)


# -- endpoints ---------------------------------------------------------------------------


def _presented(request: OAuth2Request, row: Token) -> bool:
    """Was the token in the form this row's refresh token (else its access token)?"""
    return row.refresh_hash is not None and row.refresh_hash == digest(request.form["token"])


def _find(session: Session, token: str, hint: str | None) -> OAuthToken | None:
    hashed = digest(token)
    order = (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else (
            "access_token",
            "refresh_token",
        )
    )
    for kind in order:
        column = Token.refresh_hash if kind == "refresh_token" else Token.access_hash
        row = session.scalar(select(Token).where(column == hashed))
        if row is not None:
            return OAuthToken(row, refresh=kind == "refresh_token")
    return None


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> OAuthToken | None:
        return _find(self.server.session, token_string, token_type_hint)

    def revoke_token(self, token: OAuthToken, request: OAuth2Request) -> None:
        """A refresh token takes its whole family with it (RFC 7009 §2.1); an access
        token only itself."""
        if _presented(request, token.row):
            revoke_family(self.server.session, token.row.family)
        elif token.row.revoked_at is None:
            token.row.revoked_at = now()
            resource.tokens_changed(self.server.session, user_id=token.row.user_id)


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> OAuthToken | None:
        return _find(self.server.session, token_string, token_type_hint)

    def check_permission(
        self, token: OAuthToken, client: OAuthClient, request: OAuth2Request
    ) -> bool:
        return token.check_client(client)  # a client learns only of its own tokens

    def introspect_token(self, token: OAuthToken) -> dict[str, Any]:
        row = token.row
        client = self.server.session.get(Client, row.client_pk)
        assert client is not None
        out: dict[str, Any] = {
            "active": True,
            "client_id": client.client_id,
            "scope": row.scope,
            "token_type": "refresh_token" if token.refresh else "Bearer",
            "iat": int(row.issued_at.timestamp()),
            "exp": int(token.expires_at().timestamp()),
            "iss": issuer(),
        }
        if row.user_id is not None:
            out["sub"] = identity.pairwise_subject(client.client_id, row.user_id)
        return out


def revoke_family(session: Session, family: str) -> None:
    """Revoke every token of a family; processes holding them drop them at the commit."""
    revoked = session.execute(
        update(Token)
        .where(Token.family == family, Token.revoked_at.is_(None))
        .values(revoked_at=now())
        .returning(Token.user_id)
    ).all()
    for user_id in {row.user_id for row in revoked}:
        resource.tokens_changed(session, user_id=user_id)


# -- the server --------------------------------------------------------------------------


@dataclass
class HttpAnswer:
    status: int
    body: str | bytes | dict[str, Any]
    headers: list[tuple[str, str]]


class Provider(AuthorizationServer):  # type: ignore[misc]
    """The authorization server for one request, over its database session."""

    def __init__(self, session: Session, *, auth_time: datetime | None = None) -> None:
        super().__init__(scopes_supported=list(scopes.SCOPES))
        self.session = session
        self.auth_time = auth_time
        self._key: tuple[str, RSAKey] | None = None
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=lambda **_: secrets.token_urlsafe(32),
                refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
                expires_generator=lambda client, grant_type: ACCESS_TOKEN_TTL_S,
            ),
        )
        self.register_grant(
            AuthorizationCodeGrant, [CodeChallenge(required=True), OpenIDConnect(self)]
        )
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def validate_requested_scope(self, scope: str | None) -> None:
        """Known scopes only, ``baas:<app id>`` among them (not a fixed list)."""
        if scopes.unknown(scopes.parse(scope)):
            raise InvalidScopeError()

    # Authlib's storage hooks.
    def query_client(self, client_id: str) -> OAuthClient | None:
        row = clients.by_client_id(self.session, client_id or "")
        return None if row is None else OAuthClient(row)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        client: OAuthClient = request.client
        view: MemberView | None = request.user
        if request.refresh_token is not None:
            family = request.refresh_token.row.family
        else:
            family = secrets.token_hex(16)
            if request.authorization_code is not None:
                request.authorization_code.row.family = family
        refresh = token.get("refresh_token")
        self.session.add(
            Token(
                client_pk=client.row.id,
                user_id=view.user_id if view is not None else None,
                family=family,
                scope=token.get("scope", ""),
                access_hash=digest(token["access_token"]),
                refresh_hash=digest(refresh) if refresh else None,
                expires_at=now() + timedelta(seconds=int(token["expires_in"])),
                refresh_expires_at=(
                    now() + timedelta(seconds=REFRESH_TOKEN_TTL_S) if refresh else None
                ),
            )
        )
        self.session.flush()

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # a WebRequest, built by the web layer

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> HttpAnswer:
        return HttpAnswer(status, body, list(headers))

    # What the grants read.
    @property
    def current_client(self) -> OAuthClient:
        client: OAuthClient = self._request.client
        return client

    def member(self, user_id: int) -> MemberView | None:
        return identity.member_view(self.session, user_id)

    def signing_key(self) -> tuple[str, RSAKey]:
        if self._key is None:
            self._key = keys.current(self.session)
        return self._key

    # The request being served (the OpenID extension asks for its client).
    def create_token_response(self, request: OAuth2Request) -> HttpAnswer:
        self._request = request
        answer: HttpAnswer = super().create_token_response(request)
        return answer


class _Params(OAuth2Payload):  # type: ignore[misc]
    """A request's parameters: the first value of each, and all (a repeated protocol
    parameter is refused, RFC 6749 §3.1)."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._first: dict[str, str] = {}
        self._all: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._first.setdefault(key, value)
            self._all[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._first

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._all


class WebRequest(OAuth2Request):  # type: ignore[misc]
    """An Authlib request of a web request: the query (GET) or the form (POST) as its
    parameters, its URI as the issuer names it (the public base URL, so the transport
    check sees the scheme users reach us by)."""

    def __init__(
        self,
        method: str,
        path_and_query: str,
        items: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
    ) -> None:
        # Kept as given: the web layer's headers, read case-insensitively.
        super().__init__(method, issuer() + path_and_query, headers=headers)
        self.payload = _Params(items)
        self._params = self.payload.data

    @property
    def args(self) -> dict[str, str]:
        return self._params if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return self._params if self.method == "POST" else {}

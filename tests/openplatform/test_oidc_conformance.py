"""The provider as a client library that is not ours sees it: Authlib's OAuth 2.0 client
for the protocol, joserfc for the ``id_token`` against the published JWKS.

Discovery, code + PKCE, refresh with rotation (and a reused refresh token revoking its
family), revocation, introspection, userinfo, a tampered or expired ``id_token`` refused,
a wrong ``redirect_uri`` refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError
from joserfc.jwk import KeySet

from tests.fixtures import Tree
from tests.openplatform.conftest import (
    REDIRECT_URI,
    BrowserFactory,
    ClientFactory,
    RegisteredClient,
    redirect_params,
)

SCOPE = "openid profile membership"


def _discovery(server: str) -> dict[str, Any]:
    resp = httpx.get(f"{server}/.well-known/openid-configuration")
    assert resp.status_code == 200
    meta: dict[str, Any] = resp.json()
    return meta


_opened: list[OAuth2Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def _oauth(server: str, client: RegisteredClient) -> OAuth2Client:
    """Authlib's client for ``client`` (closed after the test)."""
    oauth = OAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_endpoint_auth_method="client_secret_basic" if client.client_secret else "none",
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    _opened.append(oauth)
    return oauth


def _sign_in(
    server: str, oauth: OAuth2Client, browser: Any, *, nonce: str = "n-0S6_WzA2Mj"
) -> tuple[dict[str, Any], str]:
    """The whole front channel and the code exchange: the token and the verifier used."""
    meta = _discovery(server)
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    back = browser.authorize(url)
    params = redirect_params(back)
    assert params["state"] == state
    token = oauth.fetch_token(
        meta["token_endpoint"],
        authorization_response=back.headers["location"],
        code_verifier=verifier,
    )
    return dict(token), verifier


def _keys(server: str) -> KeySet:
    return KeySet.import_key_set(httpx.get(_discovery(server)["jwks_uri"]).json())


def _id_claims(server: str, id_token: str, client_id: str, **validate: Any) -> dict[str, Any]:
    decoded = jwt.decode(id_token, _keys(server), algorithms=["RS256"])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": server},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        **validate,
    )
    registry.validate(decoded.claims)
    return dict(decoded.claims)


def test_discovery_names_every_endpoint_under_the_issuer(server: str) -> None:
    meta = _discovery(server)
    assert meta["issuer"] == server
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
    ):
        assert meta[key].startswith(server + "/"), key
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["subject_types_supported"] == ["pairwise"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]


def test_a_member_signs_in_to_a_unions_app_with_code_and_pkce(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    oauth = _oauth(server, client)
    token, _ = _sign_in(server, oauth, browser, nonce="abc-123")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 900
    assert set(token["scope"].split()) == set(SCOPE.split())
    assert token["refresh_token"]

    claims = _id_claims(server, token["id_token"], client.client_id)
    assert claims["nonce"] == "abc-123"
    assert claims["membership"]["union"]["name"] == "天河软件园工会"
    assert claims["sub"] != str(browser.user_id)  # pairwise, not the internal id
    assert len(claims["sub"]) == 32

    meta = _discovery(server)
    info = oauth.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"]
    assert info["nickname"] == "王芳"
    assert info["membership"] == {
        "verified": True,
        "verified_at": info["membership"]["verified_at"],
        "union": {"code": "GZ-TH-01", "name": "天河软件园工会"},
        "org_chain": ["广东省总工会", "广州市总工会", "天河区总工会", "天河软件园工会"],
    }
    me = oauth.get(f"{server}/open/v1/me").json()
    assert me == info

    # The same member through a second client has another subject.
    other = register_client()
    token2, _ = _sign_in(server, _oauth(server, other), browser)
    claims2 = _id_claims(server, token2["id_token"], other.client_id)
    assert claims2["sub"] != claims["sub"]


def test_consent_is_asked_once_and_declining_sends_access_denied(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    oauth = _oauth(server, client)
    meta = _discovery(server)

    url, state = oauth.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=generate_token(48)
    )
    declined = redirect_params(browser.authorize(url, decision="deny"))
    assert declined["error"] == "access_denied"
    assert declined["state"] == state
    assert "code" not in declined

    _sign_in(server, oauth, browser)  # agrees
    url, _ = oauth.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=generate_token(48)
    )
    again = browser.http.get(url)  # no screen: straight back with a code
    assert "code" in redirect_params(again)
    asked = browser.http.get(url + "&prompt=consent")
    assert asked.status_code == 200
    assert "同意并继续" in asked.text
    # No other site may frame the screen and trick the tap (RFC 6749 §10.13).
    assert asked.headers["x-frame-options"] == "DENY"
    assert asked.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    oauth = _oauth(server, client)
    token, _ = _sign_in(server, oauth, member_browser(tree.grassroots_a1x))
    meta = _discovery(server)
    first_refresh = token["refresh_token"]

    renewed = dict(oauth.refresh_token(meta["token_endpoint"], refresh_token=first_refresh))
    assert renewed["refresh_token"] != first_refresh
    assert renewed["access_token"] != token["access_token"]
    userinfo = httpx.get(
        meta["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {renewed['access_token']}"},
    )
    assert userinfo.status_code == 200

    # The first refresh token again: someone copied it. Refused, and the renewed pair dies.
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
    assert refused.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        oauth.refresh_token(meta["token_endpoint"], refresh_token=renewed["refresh_token"])
    gone = httpx.get(
        meta["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {renewed['access_token']}"},
    )
    assert gone.status_code == 401
    assert gone.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert gone.json()["error"]["code"] == "openplatform.token_invalid"


def test_introspection_and_revocation(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    oauth = _oauth(server, client)
    token, _ = _sign_in(server, oauth, member_browser(tree.grassroots_a1x))
    meta = _discovery(server)
    endpoint = meta["introspection_endpoint"]

    seen = oauth.introspect_token(endpoint, token=token["access_token"]).json()
    assert seen["active"] is True
    assert seen["client_id"] == client.client_id
    assert seen["sub"] == _id_claims(server, token["id_token"], client.client_id)["sub"]
    assert set(seen["scope"].split()) == set(SCOPE.split())

    # Another client learns nothing of this token.
    other = _oauth(server, register_client())
    assert other.introspect_token(endpoint, token=token["access_token"]).json() == {"active": False}

    # Revoking the refresh token ends the access token of the same grant (RFC 7009 §2.1).
    revoked = oauth.revoke_token(
        meta["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    assert oauth.introspect_token(endpoint, token=token["access_token"]).json() == {"active": False}
    answer = httpx.get(
        meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert answer.status_code == 401


def test_a_tampered_or_expired_id_token_is_refused_by_the_client(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    token, _ = _sign_in(server, _oauth(server, client), member_browser(tree.grassroots_a1x))
    id_token = token["id_token"]
    claims = _id_claims(server, id_token, client.client_id)

    header, payload, signature = id_token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(BadSignatureError):
        jwt.decode(f"{header}.{flipped}.{signature}", _keys(server), algorithms=["RS256"])

    assert claims["exp"] - claims["iat"] == 3600
    later = jwt.JWTClaimsRegistry(now=int(claims["exp"]) + 1, leeway=0)
    with pytest.raises(ExpiredTokenError):
        later.validate(claims)
    assert claims["exp"] > time.time()  # valid now, expired after its hour


def test_a_wrong_redirect_uri_is_refused_at_both_ends(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    meta = _discovery(server)

    evil = _oauth(server, client)
    evil.redirect_uri = "https://attacker.example/callback"
    url, _ = evil.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=generate_token(48)
    )
    page = browser.http.get(url)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "无法完成授权" in page.text

    # A code issued for the registered URI is not exchanged for another one.
    oauth = _oauth(server, client)
    verifier = generate_token(48)
    url, _ = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
    code = redirect_params(browser.authorize(url))["code"]
    resp = httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9/elsewhere",
            "code_verifier": verifier,
        },
        auth=(client.client_id, client.client_secret or ""),
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"


def test_the_open_apis_have_their_own_openapi_document(server: str) -> None:
    doc = httpx.get(f"{server}/open/v1/openapi.json").json()
    assert doc["info"]["title"] == "gonghui open APIs"
    paths = set(doc["paths"])
    assert {"/open/v1/me", "/open/v1/activities", "/oauth/token", "/oauth/userinfo"} <= paths
    assert all(p.startswith(("/open/v1/", "/oauth/", "/.well-known/")) for p in paths)
    assert doc["components"]["securitySchemes"]["oidc"]["openIdConnectUrl"] == (
        f"{server}/.well-known/openid-configuration"
    )
    staff = httpx.get(f"{server}/openapi.json").json()
    assert "/api/v1/oauth-clients" in staff["paths"]

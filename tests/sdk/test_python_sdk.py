"""The Python SDK (sdk/python, ``gonghui_sdk``) end to end against the real server: a member
signs in through the H5 consent page, the app reads them and their wallet, an expired
token is renewed with the rotated refresh token handed back, revocation ends the sign-in,
a back end pages through its activities, and refusals arrive as exceptions."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from gonghui import clock
from gonghui.orgs.models import Role
from gonghui_sdk import (
    ApiError,
    AsyncOAuth,
    AsyncOpenClient,
    InvalidTokenError,
    OAuth,
    OAuthError,
    OpenClient,
    RateLimitedError,
    TokenSet,
)
from tests.fixtures import StaffFactory, Tree
from tests.openplatform.conftest import REDIRECT_URI, Browser, ClientFactory, RegisteredClient
from tests.sdk.conftest import CLIENT_SCOPE, MEMBER_SCOPE, UnionActivities

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_client(register_client: ClientFactory) -> RegisteredClient:
    return register_client(scope=CLIENT_SCOPE)


@pytest.fixture
def oauth(server: str, app_client: RegisteredClient) -> Iterator[OAuth]:
    with OAuth.discover(
        server,
        client_id=app_client.client_id,
        client_secret=app_client.client_secret,
        redirect_uri=REDIRECT_URI,
    ) as oauth:
        yield oauth


def sign_in(oauth: OAuth, member: Browser, scope: str = MEMBER_SCOPE) -> TokenSet:
    request = oauth.authorization_request(scope)
    callback = member.authorize(request.url)
    return oauth.exchange_code(callback.headers["location"], request)


def test_a_member_signs_in_and_the_app_reads_them_and_their_wallet(
    server: str, oauth: OAuth, member: Browser
) -> None:
    request = oauth.authorization_request(MEMBER_SCOPE)
    assert request.url.startswith(f"{server}/h5/oauth/authorize?")
    assert "code_challenge_method=S256" in request.url
    callback = member.authorize(request.url)
    tokens = oauth.exchange_code(callback.headers["location"], request)
    assert tokens.scope.split() == MEMBER_SCOPE.split()
    assert tokens.refresh_token
    assert tokens.id_claims["nonce"] == request.nonce
    assert tokens.id_claims["aud"] == [oauth.client_id]

    client = OpenClient(oauth, tokens)
    me = client.me()
    assert me["sub"] == tokens.id_claims["sub"]
    membership = me.get("membership")
    assert membership is not None
    assert membership["verified"] is True
    assert membership.get("union") == {"code": "GZ-TH-01", "name": "天河软件园工会"}
    wallet = client.benefits()
    assert wallet["points"] == 30
    assert [(v["name"], v["value_cents"]) for v in wallet["vouchers"]] == [("十元券", 1000)]
    assert wallet["prizes"] == []


def test_a_callback_of_another_sign_in_or_a_refusal_is_not_exchanged(
    oauth: OAuth, member: Browser
) -> None:
    first, second = oauth.authorization_request("openid"), oauth.authorization_request("openid")
    callback = member.authorize(first.url).headers["location"]
    with pytest.raises(OAuthError) as wrong_state:
        oauth.exchange_code(callback, second)
    assert wrong_state.value.error == "invalid_state"

    declined = oauth.authorization_request("openid", prompt="consent")
    back = member.authorize(declined.url, decision="deny").headers["location"]
    with pytest.raises(OAuthError) as denied:
        oauth.exchange_code(back, declined)
    assert denied.value.error == "access_denied"

    # The code of the first sign-in, exchanged with another verifier: the provider refuses.
    with pytest.raises(OAuthError) as bad_verifier:
        oauth.exchange_code(callback, replace(first, code_verifier="x" * 64))
    assert (bad_verifier.value.error, bad_verifier.value.status) == ("invalid_grant", 400)


def test_an_expired_access_token_is_renewed_and_the_rotated_refresh_token_handed_back(
    oauth: OAuth, member: Browser
) -> None:
    tokens = sign_in(oauth, member)
    handed: list[TokenSet] = []
    client = OpenClient(oauth, tokens, on_refresh=handed.append)

    clock.advance(timedelta(minutes=16))  # the server's 15 minutes are over; ours are not
    assert not tokens.expired()
    assert client.me()["sub"] == tokens.id_claims["sub"]
    assert len(handed) == 1
    assert handed[0].refresh_token not in (None, tokens.refresh_token)
    assert client.tokens == handed[0]

    # Expired by our own clock: renewed before the call, without a refused one.
    client = OpenClient(oauth, replace(handed[0], expires_at=0), on_refresh=handed.append)
    assert client.benefits()["points"] == 30
    assert len(handed) == 2
    assert handed[1].refresh_token != handed[0].refresh_token

    # The spent refresh token, presented again, is refused and revokes its whole family.
    assert tokens.refresh_token is not None
    with pytest.raises(OAuthError) as replayed:
        oauth.refresh(tokens.refresh_token)
    assert replayed.value.error == "invalid_grant"
    with pytest.raises(InvalidTokenError):
        OpenClient(oauth, replace(client.tokens, refresh_token=None)).me()


def test_a_revoked_sign_in_reads_nothing(oauth: OAuth, member: Browser) -> None:
    tokens = sign_in(oauth, member)
    assert tokens.refresh_token is not None
    oauth.revoke(tokens.refresh_token, token_type_hint="refresh_token")

    with pytest.raises(InvalidTokenError) as refused:
        OpenClient(oauth, replace(tokens, refresh_token=None)).me()
    assert (refused.value.status, refused.value.code) == (401, "openplatform.token_invalid")
    with pytest.raises(OAuthError) as renewal:  # the SDK tried the refresh token: dead too
        OpenClient(oauth, tokens).me()
    assert renewal.value.error == "invalid_grant"


def test_a_back_end_pages_through_its_unions_activities_with_its_own_token(
    oauth: OAuth, union_activities: UnionActivities
) -> None:
    client = OpenClient.with_client_credentials(oauth)
    assert client.tokens.scope == "activities:read"
    assert client.tokens.refresh_token is None
    pages = list(client.activity_pages(limit=2))
    assert [[a["title"] for a in page["items"]] for page in pages] == [
        union_activities.titles[:2],
        union_activities.titles[2:],
    ]
    assert pages[-1]["next_before"] is None
    assert {a["org_code"] for a in pages[-1]["items"]} == {"GZ-TH-01"}

    # Its token expired at the server: a new one from the client credentials.
    old = client.tokens.access_token
    clock.advance(timedelta(minutes=16))
    assert [a["title"] for a in client.activities(limit=1)["items"]] == ["广州投票"]
    assert client.tokens.access_token != old


def test_refusals_arrive_as_exceptions_with_the_envelopes_code(
    oauth: OAuth, member: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gonghui.settings import get_settings

    member_client = OpenClient(oauth, sign_in(oauth, member))
    with pytest.raises(ApiError) as no_scope:
        member_client.activities()
    assert no_scope.value.status == 403
    assert no_scope.value.code == "openplatform.insufficient_scope"
    assert no_scope.value.details == {"scope": "activities:read"}

    # The client's calls a minute count the member's refused call above, and this one.
    monkeypatch.setattr(get_settings(), "open_api_calls_per_minute", 2)
    back_end = OpenClient.with_client_credentials(oauth)
    back_end.activities()
    with pytest.raises(RateLimitedError) as limited:
        back_end.activities()
    assert (limited.value.status, limited.value.code) == (429, "openplatform.too_many_calls")
    assert limited.value.retry_after == 60


def test_the_async_client_signs_in_and_reads_the_same(
    server: str, app_client: RegisteredClient, member: Browser, union_activities: UnionActivities
) -> None:
    async def story() -> tuple[str, int, list[str], str | None]:
        async with await AsyncOAuth.discover(
            server,
            client_id=app_client.client_id,
            client_secret=app_client.client_secret,
            redirect_uri=REDIRECT_URI,
        ) as oauth:
            request = oauth.authorization_request(MEMBER_SCOPE)
            callback = await asyncio.to_thread(member.authorize, request.url)
            tokens = await oauth.exchange_code(callback.headers["location"], request)
            handed: list[TokenSet] = []
            client = AsyncOpenClient(oauth, tokens, on_refresh=handed.append)
            clock.advance(timedelta(minutes=16))
            union = ((await client.me()).get("membership") or {}).get("union") or {}
            points = (await client.benefits())["points"]
            back_end = await AsyncOpenClient.with_client_credentials(oauth)
            titles = [a["title"] async for page in back_end.activity_pages() for a in page["items"]]
            return union["name"], points, titles, handed[0].refresh_token

    # In a thread of its own: a Playwright test earlier in the process leaves an event loop
    # running in this one, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(1) as pool:
        name, points, titles, rotated = pool.submit(asyncio.run, story()).result()
    assert (name, points, titles) == ("天河软件园工会", 30, ["广州投票", "广州答题", "天河抽奖"])
    assert rotated


def test_the_sdks_types_are_those_of_the_servers_openapi_document(server: str) -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "sdk" / "generate.py"), f"{server}/open/v1/openapi.json",
         "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_a_back_end_reads_its_unions_news_page_by_page(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    register_client: ClientFactory,
) -> None:  # fmt: skip
    from tests.news.helpers import publish

    editor = make_staff(tree.province, Role.OPERATOR)
    reviewer = make_staff(tree.province, Role.OPERATOR)
    ours = [publish(api, editor, reviewer, org) for org in (tree.city_a, tree.grassroots_a1x)]
    publish(api, editor, reviewer, tree.city_b)  # another subtree: never read
    app = register_client(scope="openid news:read")
    with OAuth.discover(
        server, client_id=app.client_id, client_secret=app.client_secret, redirect_uri=REDIRECT_URI
    ) as oauth:
        client = OpenClient.with_client_credentials(oauth, "news:read")
        pages = list(client.news_pages(limit=1))
        assert [[n["id"] for n in page["items"]] for page in pages] == [[ours[1]], [ours[0]]]
        item = client.news_item(ours[0])
        assert item["body_html"] == "<p>全市职工运动会将于下月举行。</p>"
        with pytest.raises(ApiError) as gone:
            client.news_item(ours[0] + 100)
        assert (gone.value.status, gone.value.code) == (404, "news.not_found")

    async def read_async() -> list[int]:
        async with await AsyncOAuth.discover(
            server,
            client_id=app.client_id,
            client_secret=app.client_secret,
            redirect_uri=REDIRECT_URI,
        ) as aoauth:
            back_end = await AsyncOpenClient.with_client_credentials(aoauth, "news:read")
            return [n["id"] async for page in back_end.news_pages() for n in page["items"]]

    with ThreadPoolExecutor(1) as pool:  # as above: an event loop may run in this thread
        assert pool.submit(asyncio.run, read_async()).result() == [ours[1], ours[0]]

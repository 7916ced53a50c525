"""An org's OAuth client, and a verified member signed in on the H5 (cookies) to grant it."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.members.idnumber import check_character
from gonghui.tenancy import SYSTEM
from gonghui.web.session import ACCESS_COOKIE, REFRESH_COOKIE
from tests.fixtures import Staff, StaffFactory, Tree

REDIRECT_URI = "http://127.0.0.1:9/callback"
_numbers = itertools.count(500_001)


def _id_number(n: int) -> str:
    first17 = f"440106{1960 + n % 40:04d}0307{n % 1000:03d}"
    return first17 + check_character(first17)


@dataclass
class Browser:
    """A member's phone: the H5's sign-in cookies, following no redirect by itself."""

    http: httpx.Client
    user_id: int

    def authorize(self, url: str, *, decision: str = "allow") -> httpx.Response:
        """Open the authorization URL; on the consent screen, answer ``decision``. The
        answer: the redirect back to the app (or the page that refused)."""
        page = self.http.get(url)
        if page.status_code != 200 or 'name="decision"' not in page.text:
            return page
        return self.http.post(
            "/h5/oauth/authorize",
            content=urlencode(consent_form(page.text, decision)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )


def consent_form(html: str, decision: str) -> list[tuple[str, str]]:
    """The consent screen's hidden fields (the request, the CSRF token) and the decision."""
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    unescaped = [(k, v.replace("&amp;", "&").replace("&#34;", '"')) for k, v in fields]
    return [*unescaped, ("decision", decision)]


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def authorize_url(client: RegisteredClient, challenge: str | None, **extra: str) -> str:
    """The app's authorization request for ``client`` (``openid membership``, state s-1)."""
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid membership",
        "state": "s-1",
        **extra,
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return "/h5/oauth/authorize?" + urlencode(params)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


BrowserFactory = Callable[..., Browser]


@pytest.fixture
def member_browser(server: str) -> BrowserFactory:
    """A verified member of ``org_id`` (a fresh roster entry) signed in on the H5."""
    opened: list[httpx.Client] = []

    def make(org_id: int, name: str = "王芳") -> Browser:
        n = next(_numbers)
        with unit_of_work() as session:
            user = create_user(session, display_name=name)
            members.add_roster_entry(
                session, actor=SYSTEM, org_id=org_id, name=name, id_number=_id_number(n)
            )
            members.verify(session, user_id=user.id, name=name, id_number=_id_number(n))
            pair = start_session(session, user=user, channel="h5")
            user_id = user.id
        http = httpx.Client(base_url=server, follow_redirects=False)
        http.cookies.set(ACCESS_COOKIE, pair.access_token, domain="127.0.0.1")
        http.cookies.set(REFRESH_COOKIE, pair.refresh_token, domain="127.0.0.1")
        opened.append(http)
        return Browser(http, user_id)

    yield make  # type: ignore[misc]
    for http in opened:
        http.close()


@dataclass(frozen=True)
class RegisteredClient:
    id: int
    client_id: str
    client_secret: str | None
    body: dict[str, Any]


ClientFactory = Callable[..., RegisteredClient]


@pytest.fixture
def city_developer(make_staff: StaffFactory, tree: Tree) -> Staff:
    from gonghui.orgs.models import Role

    return make_staff(tree.city_a, Role.DEVELOPER)


@pytest.fixture
def register_client(api: httpx.Client, city_developer: Staff, tree: Tree) -> ClientFactory:
    def register(
        *,
        kind: str = "confidential",
        org_id: int | None = None,
        scope: str = "openid profile membership",
        staff: Staff | None = None,
    ) -> RegisteredClient:
        resp = api.post(
            "/api/v1/oauth-clients",
            json={
                "org_id": org_id or tree.city_a,
                "name": "广州职工就业服务",
                "kind": kind,
                "redirect_uris": [REDIRECT_URI],
                "scope": scope,
            },
            headers=(staff or city_developer).headers,
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return RegisteredClient(body["id"], body["client_id"], body["client_secret"], body)

    return register


_people = itertools.count(700_001)  # roster people of the tests, apart from members'


def client_token(server: str, client: RegisteredClient, scope: str | None = None) -> httpx.Response:
    """The client's own token (client credentials), asking for ``scope`` (None: its default)."""
    assert client.client_secret is not None
    data = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
    return httpx.post(
        f"{server}/oauth/token", data=data, auth=(client.client_id, client.client_secret)
    )


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def approve(
    api: httpx.Client, staff: Staff, client: RegisteredClient, scope: str
) -> httpx.Response:
    return api.post(
        f"/api/v1/oauth-clients/{client.id}/approvals", json={"scope": scope}, headers=staff.headers
    )


def on_roster(org_id: int, name: str, phone: str | None = None) -> tuple[int, str]:
    """A person on ``org_id``'s roster: their entry id and ID number."""
    number = _id_number(next(_people))
    with unit_of_work() as session:
        entry = members.add_roster_entry(
            session, actor=SYSTEM, org_id=org_id, name=name, id_number=number, phone=phone
        )
        return entry.id, number

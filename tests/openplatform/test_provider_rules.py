"""The provider's own rules: who registers clients, whom a client may sign in, PKCE for
every client, a code used once, public clients without secrets, client credentials."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.openplatform import keys
from gonghui.openplatform.models import Client, Token
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree, page_csrf
from tests.openplatform.conftest import (
    REDIRECT_URI,
    BrowserFactory,
    ClientFactory,
    RegisteredClient,
    authorize_url,
    pkce,
    redirect_params,
)


def _exchange(server: str, client: RegisteredClient, code: str, verifier: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    if client.client_secret is None:
        return httpx.post(f"{server}/oauth/token", data={**data, "client_id": client.client_id})
    return httpx.post(
        f"{server}/oauth/token", data=data, auth=(client.client_id, client.client_secret)
    )


def _signed_in(server: str, client: RegisteredClient, browser: Any, **extra: str) -> httpx.Response:
    """The member signs in to ``client`` (consenting, with PKCE): the code exchange's answer."""
    verifier, challenge = pkce()
    code = redirect_params(browser.authorize(authorize_url(client, challenge, **extra)))["code"]
    return _exchange(server, client, code, verifier)


def _tokens(client_pk: int) -> list[Token]:
    with unit_of_work(read_only=True) as session:
        return list(session.scalars(select(Token).where(Token.client_pk == client_pk)))


def test_a_client_is_registered_by_its_orgs_developer_and_its_secret_shown_once(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, register_client: ClientFactory
) -> None:
    client = register_client()
    assert client.client_secret is not None
    assert len(client.client_secret) >= 43
    assert client.body["grant_types"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    with unit_of_work(read_only=True) as session:
        row = session.scalar(select(Client).where(Client.client_id == client.client_id))
        assert row is not None
        assert row.secret_hash is not None
        assert client.client_secret.encode() not in row.secret_hash  # only its hash
        audited = session.scalar(
            select(func.count()).where(AuditEntry.action == "openplatform.client.register")
        )
    assert audited == 1

    city_b = make_staff(tree.city_b, Role.DEVELOPER)
    assert api.get(f"/api/v1/oauth-clients/{client.id}", headers=city_b.headers).status_code == 404
    assert api.get("/api/v1/oauth-clients", headers=city_b.headers).json() == []
    operator = make_staff(tree.city_a, Role.OPERATOR)  # no apps.manage
    refused = api.post(
        "/api/v1/oauth-clients",
        json={
            "org_id": tree.city_a,
            "name": "x",
            "kind": "public",
            "redirect_uris": [REDIRECT_URI],
        },
        headers=operator.headers,
    )
    assert refused.status_code == 404
    shown = api.get(f"/api/v1/oauth-clients/{client.id}", headers=make_staff(tree.city_a).headers)
    assert "client_secret" not in shown.json()


@pytest.mark.parametrize(
    ("uris", "field"),
    [
        (["http://example.com/cb"], "redirect_uris.0"),
        ([REDIRECT_URI, "https://app.example/cb#frag"], "redirect_uris.1"),
        (["javascript:alert(1)"], "redirect_uris.0"),
        ([], "redirect_uris"),
    ],
)
def test_redirect_uris_are_https_or_loopback_without_fragments(
    api: httpx.Client, tree: Tree, city_developer: Any, uris: list[str], field: str
) -> None:
    resp = api.post(
        "/api/v1/oauth-clients",
        json={"org_id": tree.city_a, "name": "x", "kind": "public", "redirect_uris": uris},
        headers=city_developer.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "openplatform.bad_redirect_uri"
    assert resp.json()["error"]["details"][0]["field"] == field
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Client)) == 0


def test_a_client_signs_in_only_members_of_its_orgs_subtree(
    tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()  # of city A
    _, challenge = pkce()
    shenzhen = member_browser(tree.grassroots_b1)
    page = shenzhen.http.get(authorize_url(client, challenge))
    assert page.status_code == 403
    assert "不服务你所在的工会" in page.text
    assert "location" not in page.headers
    assert _tokens(client.id) == []


def test_pkce_is_required_of_every_client_and_checked(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()  # confidential: it has a secret, and still needs PKCE
    browser = member_browser(tree.grassroots_a1x)
    without = browser.authorize(authorize_url(client, None))
    params = redirect_params(without)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    plain = browser.http.get(
        authorize_url(client, None, code_challenge="x" * 43, code_challenge_method="plain")
    )
    assert redirect_params(plain)["error"] == "invalid_request"

    verifier, challenge = pkce()
    code = redirect_params(browser.authorize(authorize_url(client, challenge)))["code"]
    wrong = _exchange(server, client, code, pkce()[0])
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert _tokens(client.id) == []


def test_a_code_used_twice_revokes_what_its_first_use_issued(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    verifier, challenge = pkce()
    code = redirect_params(browser.authorize(authorize_url(client, challenge)))["code"]
    first = _exchange(server, client, code, verifier)
    assert first.status_code == 200
    access = first.json()["access_token"]
    me = httpx.get(f"{server}/open/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200
    assert me.json()["membership"]["verified"] is True

    replay = _exchange(server, client, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    gone = httpx.get(f"{server}/open/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert gone.status_code == 401
    assert [t.revoked_at is not None for t in _tokens(client.id)] == [True]


def test_a_public_client_signs_in_without_a_secret(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client(kind="public")
    assert client.client_secret is None
    assert "client_credentials" not in client.body["grant_types"]
    browser = member_browser(tree.grassroots_a1x)
    verifier, challenge = pkce()
    code = redirect_params(browser.authorize(authorize_url(client, challenge)))["code"]
    token = _exchange(server, client, code, verifier)
    assert token.status_code == 200, token.text
    assert "id_token" in token.json()
    # It cannot introspect (that is for a back end holding a secret) ...
    seen = httpx.post(
        f"{server}/oauth/introspect",
        data={"token": token.json()["access_token"], "client_id": client.client_id},
    )
    assert seen.status_code == 401
    # ... but it can revoke its own tokens (a phone signing out).
    revoked = httpx.post(
        f"{server}/oauth/revoke",
        data={"token": token.json()["refresh_token"], "client_id": client.client_id},
    )
    assert revoked.status_code == 200
    assert all(t.revoked_at is not None for t in _tokens(client.id))


def test_client_credentials_give_a_back_end_a_token_that_reads_no_member(
    server: str, register_client: ClientFactory
) -> None:
    members_only = register_client()  # openid profile membership: no scope of its own
    assert members_only.client_secret is not None
    empty = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(members_only.client_id, members_only.client_secret),
    )
    assert empty.status_code == 400
    assert empty.json()["error"] == "invalid_scope"
    client = register_client(scope="openid membership activities:read")
    assert client.client_secret is not None
    resp = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "activities:read"
    assert "refresh_token" not in resp.json()
    access = resp.json()["access_token"]
    me = httpx.get(f"{server}/open/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code in (401, 403)
    wrong = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, "not-the-secret"),
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


def test_a_disabled_client_and_its_tokens_stop_working(
    server: str,
    api: httpx.Client,
    city_developer: Any,
    tree: Tree,
    register_client: ClientFactory,
    member_browser: BrowserFactory,
) -> None:
    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    access = _signed_in(server, client, browser).json()["access_token"]
    off = api.patch(
        f"/api/v1/oauth-clients/{client.id}",
        json={"disabled": True},
        headers=city_developer.headers,
    )
    assert off.status_code == 200
    assert off.json()["disabled_at"] is not None
    me = httpx.get(f"{server}/open/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 401
    page = browser.http.get(authorize_url(client, pkce()[1]))
    assert page.status_code == 400  # unknown client: nothing is sent anywhere


def test_a_rotated_signing_key_stays_published_until_its_tokens_expire(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    id_token = _signed_in(server, client, browser, scope="openid").json()["id_token"]
    first_kid = httpx.get(f"{server}/oauth/jwks").json()["keys"][0]["kid"]

    with unit_of_work() as session:
        new_kid = keys.rotate(session)
    published = [k["kid"] for k in httpx.get(f"{server}/oauth/jwks").json()["keys"]]
    assert published == [new_kid, first_kid]
    assert id_token.count(".") == 2

    second = _signed_in(server, client, browser).json()["id_token"]
    header = base64.urlsafe_b64decode(second.split(".")[0] + "==")
    assert new_kid.encode() in header


def test_what_a_token_reads_follows_the_member_and_its_revocation_at_once(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    """Grants are held per process; a transfer, a move out of the client's unions and a
    revocation each show on the very next read."""
    from gonghui.members import roster
    from gonghui.members.models import Membership
    from gonghui.tenancy import SYSTEM

    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    token = _signed_in(server, client, browser).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}

    def me() -> httpx.Response:
        return httpx.get(f"{server}/open/v1/me", headers=bearer)

    def move_to(org_id: int) -> None:
        with unit_of_work() as session:
            entry_id = session.scalar(
                select(Membership.roster_entry_id).where(Membership.user_id == browser.user_id)
            )
            assert entry_id is not None
            roster.transfer(session, actor=SYSTEM, entry_id=entry_id, to_org_id=org_id, reason=None)

    assert me().json()["membership"]["union"]["code"] == "GZ-TH-01"
    assert me().json()["membership"]["union"]["code"] == "GZ-TH-01"  # held now
    move_to(tree.district_a1)
    assert me().json()["membership"]["union"]["code"] == "GZ-TH"
    move_to(tree.grassroots_b1)  # another city: this client no longer serves them
    assert me().status_code == 401
    refreshed = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(client.client_id, client.client_secret or ""),
    )
    assert refreshed.json()["error"] == "invalid_request"  # no member this client serves
    move_to(tree.grassroots_a1x)
    assert me().status_code == 200
    revoked = httpx.post(
        f"{server}/oauth/revoke",
        data={"token": token["access_token"]},
        auth=(client.client_id, client.client_secret or ""),
    )
    assert revoked.status_code == 200
    assert me().status_code == 401


def test_a_members_new_phone_shows_on_the_next_read(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    """A grant is held with the member's masked phone; linking another phone drops it."""
    from gonghui.accounts import identities
    from gonghui.accounts.models import User

    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    token = _signed_in(server, client, browser, scope="openid profile").json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}

    def phone() -> str:
        return str(httpx.get(f"{server}/open/v1/me", headers=bearer).json()["phone_number_masked"])

    before = phone()
    assert phone() == before  # held now
    with unit_of_work() as session:
        user = session.get_one(User, browser.user_id)
        identities.link_phone(session, user=user, phone="13912348765")
    assert phone() != before
    assert phone().endswith("8765")


def test_a_member_withdraws_an_apps_access_and_its_tokens_die(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    token = _signed_in(server, client, browser).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{server}/open/v1/me", headers=bearer).status_code == 200

    page = browser.http.get("/h5/apps")
    assert "广州职工就业服务" in page.text
    csrf = page_csrf(page.text)
    assert csrf
    done = browser.http.post(f"/h5/apps/{client.id}/withdraw", data={"csrf": csrf})
    assert done.headers["location"] == "/h5/apps?done=withdrawn"

    assert httpx.get(f"{server}/open/v1/me", headers=bearer).status_code == 401
    refreshed = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(client.client_id, client.client_secret or ""),
    )
    assert refreshed.json()["error"] == "invalid_grant"
    # The next sign-in asks again.
    _, challenge = pkce()
    again = browser.http.get(authorize_url(client, challenge))
    assert again.status_code == 200
    assert "同意并继续" in again.text
    # Another member has nothing to withdraw from this app.
    other = member_browser(tree.grassroots_a1x, name="李雷")
    page = other.http.get("/h5/apps")
    assert "你还没有授权任何应用" in page.text
    csrf = page_csrf(page.text)
    assert csrf
    nothing = other.http.post(f"/h5/apps/{client.id}/withdraw", data={"csrf": csrf})
    assert nothing.headers["location"] == "/h5/apps"


def test_each_client_has_its_calls_a_minute_and_is_told_what_is_left(
    server: str,
    tree: Tree,
    register_client: ClientFactory,
    member_browser: BrowserFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gonghui.settings import get_settings

    monkeypatch.setattr(get_settings(), "open_api_calls_per_minute", 3)
    browser = member_browser(tree.grassroots_a1x)

    def bearer(client: RegisteredClient) -> dict[str, str]:
        access = _signed_in(server, client, browser).json()["access_token"]
        return {"Authorization": f"Bearer {access}"}

    busy, quiet = register_client(), register_client()
    busy_bearer, quiet_bearer = bearer(busy), bearer(quiet)
    left = []
    for _ in range(3):
        answer = httpx.get(f"{server}/open/v1/me", headers=busy_bearer)
        assert answer.status_code == 200
        assert answer.headers["ratelimit-limit"] == "3"
        left.append(answer.headers["ratelimit-remaining"])
    assert left == ["2", "1", "0"]
    refused = httpx.get(f"{server}/oauth/userinfo", headers=busy_bearer)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "openplatform.too_many_calls"
    assert refused.headers["retry-after"] == "60"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert httpx.get(f"{server}/open/v1/me", headers=quiet_bearer).status_code == 200


def test_a_back_end_reads_its_subtrees_published_activities_with_its_own_token(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    register_client: ClientFactory, member_browser: BrowserFactory,
) -> None:  # fmt: skip
    from tests.activities.conftest import create_activity

    admin = make_staff(tree.province).headers
    live = create_activity(api, admin, tree.grassroots_a1x, title="天河抽奖")
    upcoming = create_activity(api, admin, tree.city_a, title="广州答题", starts_in_hours=48)
    create_activity(api, admin, tree.city_a, title="草稿", publish=False)
    create_activity(api, admin, tree.city_b, title="深圳抽奖")
    create_activity(api, admin, tree.province, title="全省活动")  # above the client's org

    client = register_client(scope="openid activities:read")
    assert client.client_secret is not None
    token = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
    ).json()
    assert token["scope"] == "activities:read"  # a client's token carries no member scope
    bearer = {"Authorization": f"Bearer {token['access_token']}"}

    page = httpx.get(f"{server}/open/v1/activities", headers=bearer)
    assert page.status_code == 200, page.text
    assert page.headers["ratelimit-limit"] == "6000"
    assert [(a["id"], a["title"], a["status"], a["org_code"]) for a in page.json()["items"]] == [
        (upcoming["id"], "广州答题", "scheduled", "GZ"),
        (live["id"], "天河抽奖", "live", "GZ-TH-01"),
    ]
    first = httpx.get(f"{server}/open/v1/activities?limit=1", headers=bearer).json()
    assert [a["id"] for a in first["items"]] == [upcoming["id"]]
    rest = httpx.get(
        f"{server}/open/v1/activities?limit=1&before={first['next_before']}", headers=bearer
    ).json()
    assert [a["id"] for a in rest["items"]] == [live["id"]]

    # A member's token of the same client does not carry activities:read (no member grants it).
    browser = member_browser(tree.grassroots_a1x)
    member_token = _signed_in(server, client, browser, scope="openid activities:read").json()
    assert member_token["scope"] == "openid"
    refused = httpx.get(
        f"{server}/open/v1/activities",
        headers={"Authorization": f"Bearer {member_token['access_token']}"},
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "openplatform.insufficient_scope"
    assert refused.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="activities:read"'
    )


def test_operators_read_a_clients_calls_per_day_and_its_access_log(
    server: str,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    city_developer: Any,
    register_client: ClientFactory,
    member_browser: BrowserFactory,
) -> None:
    from gonghui.clock import local_day
    from gonghui.openplatform import usage

    client = register_client()
    browser = member_browser(tree.grassroots_a1x)
    access = _signed_in(server, client, browser).json()["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    for _ in range(3):
        assert httpx.get(f"{server}/open/v1/me", headers=bearer).status_code == 200
    refused = httpx.get(f"{server}/open/v1/activities", headers=bearer)
    assert refused.status_code == 403  # no activities:read: logged with its status
    assert usage.flush() == 4  # (the background thread writes within a second anyway)

    days = api.get(f"/api/v1/oauth-clients/{client.id}/usage", headers=city_developer.headers)
    assert days.json() == [{"day": local_day().isoformat(), "calls": 4}]
    logged = api.get(
        f"/api/v1/oauth-clients/{client.id}/access-log?limit=2", headers=city_developer.headers
    ).json()
    assert [(e["path"], e["status"]) for e in logged] == [
        ("/open/v1/activities", 403),
        ("/open/v1/me", 200),
    ]
    older = api.get(
        f"/api/v1/oauth-clients/{client.id}/access-log?before={logged[-1]['id']}",
        headers=city_developer.headers,
    ).json()
    assert [e["path"] for e in older] == ["/open/v1/me", "/open/v1/me"]

    # Another city's developer sees neither.
    other = make_staff(tree.city_b, Role.DEVELOPER)
    assert (
        api.get(f"/api/v1/oauth-clients/{client.id}/usage", headers=other.headers).status_code
        == 404
    )
    assert (
        api.get(f"/api/v1/oauth-clients/{client.id}/access-log", headers=other.headers).status_code
        == 404
    )


def test_calls_are_written_by_the_background_flush_within_a_second(
    register_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from gonghui.openplatform import usage
    from gonghui.openplatform.models import UsageDay
    from gonghui.settings import get_settings

    client = register_client()
    monkeypatch.setattr(get_settings(), "open_api_usage_flush_s", 0.2)
    usage.record(
        client_pk=client.id,
        method="GET",
        path="/open/v1/me",
        status=200,
        started=time.perf_counter(),
    )
    deadline = time.monotonic() + 5
    written = None
    while written is None and time.monotonic() < deadline:
        time.sleep(0.05)
        with unit_of_work(read_only=True) as session:
            written = session.scalar(select(UsageDay.calls).where(UsageDay.client_pk == client.id))
    assert written == 1
    assert usage.flush() == 0  # nothing left behind


def test_a_member_grants_an_app_their_wallet_without_voucher_codes(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    from gonghui.benefits import service as benefits
    from gonghui.members.models import Membership

    browser = member_browser(tree.grassroots_a1x)
    with unit_of_work() as session:
        membership_id = session.scalar(
            select(Membership.id).where(Membership.user_id == browser.user_id)
        )
        assert membership_id is not None
        benefits.add_points(
            session, membership_id=membership_id, activity_id=None, points=30, source="test"
        )
        benefits.issue_vouchers(
            session, members=[membership_id], activity_id=None, name="十元券",
            value_cents=1000, threshold_cents=5000, valid_days=30, source="test",
        )  # fmt: skip

    client = register_client(scope="openid benefits:read")
    verifier, challenge = pkce()
    url = authorize_url(client, challenge, scope="openid benefits:read")
    page = browser.http.get(url)
    assert "读取你的积分、消费券和奖品（不含券码和收货地址）" in page.text
    code = redirect_params(browser.authorize(url))["code"]
    access = _exchange(server, client, code, verifier).json()["access_token"]
    wallet = httpx.get(
        f"{server}/open/v1/me/benefits", headers={"Authorization": f"Bearer {access}"}
    )
    assert wallet.status_code == 200, wallet.text
    body = wallet.json()
    assert body["points"] == 30
    assert [(v["name"], v["value_cents"], v["status"]) for v in body["vouchers"]] == [
        ("十元券", 1000, "issued")
    ]
    assert "code" not in body["vouchers"][0]
    assert body["prizes"] == []

    # Without the scope, no wallet.
    other = register_client(scope="openid")
    access = _signed_in(server, other, browser).json()["access_token"]
    refused = httpx.get(
        f"{server}/open/v1/me/benefits", headers={"Authorization": f"Bearer {access}"}
    )
    assert refused.status_code == 403


def test_a_network_sending_invalid_tokens_is_refused_before_the_database(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gonghui.openplatform import router

    monkeypatch.setattr(router, "REFUSED_TOKENS_PER_MINUTE", 3)
    answers = [
        httpx.get(
            f"{server}/open/v1/me", headers={"Authorization": f"Bearer guess-{n}"}
        ).status_code
        for n in range(3)
    ]
    assert answers == [401, 401, 401]
    for path in ("/open/v1/me", "/open/v1/activities"):
        refused = httpx.get(f"{server}{path}", headers={"Authorization": "Bearer guess-4"})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "openplatform.too_many_bad_tokens"


def test_prompt_none_never_shows_a_page_and_tells_the_app_why(
    server: str, tree: Tree, register_client: ClientFactory, member_browser: BrowserFactory
) -> None:
    """OpenID Connect Core §3.1.2.6: a silent request gets its answer at the redirect URI."""
    client = register_client()  # of city A
    _, challenge = pkce()
    silent = authorize_url(client, challenge, prompt="none")
    with httpx.Client(base_url=server, follow_redirects=False) as stranger:
        assert redirect_params(stranger.get(silent)) == {
            "error": "login_required",
            "state": "s-1",
        }
    member = member_browser(tree.grassroots_a1x)
    asked = redirect_params(member.http.get(silent))
    assert (asked["error"], asked["state"]) == ("consent_required", "s-1")
    assert _tokens(client.id) == []
    redirect_params(member.authorize(authorize_url(client, challenge)))  # consents once
    again = redirect_params(member.http.get(authorize_url(client, pkce()[1], prompt="none")))
    assert set(again) == {"code", "state"}
    elsewhere = member_browser(tree.grassroots_b1)
    refused = redirect_params(elsewhere.http.get(silent))
    assert refused["error"] == "interaction_required"
    # An unregistered redirect URI is still answered on our page, never sent anywhere.
    wrong = silent.replace("9%2Fcallback", "9%2Fother")
    with httpx.Client(base_url=server, follow_redirects=False) as stranger:
        page = stranger.get(wrong)
    assert page.status_code == 400
    assert "location" not in page.headers

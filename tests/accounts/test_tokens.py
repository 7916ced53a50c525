"""Access tokens, rotating refresh tokens with reuse detection, logout everywhere."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest

from gonghui import clock
from gonghui.accounts import principal as principals
from gonghui.accounts.access import _JWT, decode_access_token, issue_access_token
from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.errors import Unauthenticated
from tests.fixtures import PASSWORD, StaffFactory, Tree


def _login(api: httpx.Client, username: str) -> dict[str, str]:
    resp = api.post("/api/v1/auth/password", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 200
    return dict(resp.json())


def test_wrong_password_and_unknown_user_look_the_same(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    staff = make_staff(None, None)
    wrong = api.post(
        "/api/v1/auth/password", json={"username": staff.username, "password": "nope-nope-nope"}
    )
    unknown = api.post(
        "/api/v1/auth/password", json={"username": "ghost", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_refresh_rotates_and_old_token_is_single_use(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    staff = make_staff(None, None)
    first = _login(api, staff.username)
    second = api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    me = api.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {second.json()['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["user_id"] == staff.user_id


def test_reusing_a_refresh_token_revokes_the_whole_family(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    staff = make_staff(None, None)
    first = _login(api, staff.username)
    rotated = api.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    ).json()
    # An attacker replays the first token.
    replay = api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "accounts.refresh_token_reused"
    # The legitimate holder's newer tokens are dead too.
    legit = api.post("/api/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert legit.status_code == 401
    assert legit.json()["error"]["code"] == "accounts.session_revoked"
    me = api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.status_code == 401
    # Another sign-in of the same user is unaffected.
    other = _login(api, staff.username)
    assert (
        api.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"}
        ).status_code
        == 200
    )


def test_logout_everywhere_kills_every_session(
    api: httpx.Client, make_staff: StaffFactory, tree: Tree
) -> None:
    staff = make_staff(None, None)
    a, b = _login(api, staff.username), _login(api, staff.username)
    resp = api.post(
        "/api/v1/auth/logout-all", headers={"Authorization": f"Bearer {a['access_token']}"}
    )
    assert resp.status_code == 204
    for pair in (a, b):
        assert (
            api.get(
                "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
            ).status_code
            == 401
        )
        assert (
            api.post(
                "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
            ).status_code
            == 401
        )


def test_access_token_expires(api: httpx.Client, make_staff: StaffFactory) -> None:
    staff = make_staff(None, None)
    clock.advance(timedelta(minutes=16))
    resp = api.get("/api/v1/auth/me", headers=staff.headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "accounts.token_expired"


def test_missing_and_garbage_tokens_get_the_envelope(api: httpx.Client, server: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic x"}):
        resp = api.get("/api/v1/auth/me", headers=headers)
        assert resp.status_code == 401
        assert set(resp.json()["error"]) == {"code", "message", "details"}
        assert resp.headers["x-request-id"]


def test_the_principal_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tokens without claims (as issued before tokens carried them) are what gets cached.
    monkeypatch.setattr(principals, "PRINCIPAL_CACHE_MAX", 5)
    with unit_of_work() as session:
        user = create_user(session, display_name="many sign-ins")
        sessions = [start_session(session, user=user).session_id for _ in range(12)]
    tokens = [issue_access_token(user_id=user.id, session_id=sid) for sid in sessions]
    with unit_of_work(read_only=True) as session:
        live = [principals.resolve(session, token) for token in tokens]
    assert {p.user_id for p in live} == {user.id}
    assert 1 <= len(principals._cache) <= 5


def test_a_full_principal_cache_drops_expired_sign_ins_before_fresh_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(principals, "PRINCIPAL_CACHE_MAX", 4)
    with unit_of_work() as session:
        user = create_user(session, display_name="five sign-ins")
        sids = [start_session(session, user=user).session_id for _ in range(5)]
    tokens = {sid: issue_access_token(user_id=user.id, session_id=sid) for sid in sids}
    first, second, third, fourth, fifth = sids

    def resolve(*signed_in: str) -> None:
        with unit_of_work(read_only=True) as session:
            for sid in signed_in:
                assert principals.resolve(session, tokens[sid]).session_id == sid

    resolve(first, second, third)
    clock.advance(timedelta(seconds=principals.PRINCIPAL_CACHE_TTL_S + 1))
    # The first is read again (fresh, yet the oldest in the cache); the fourth is new.
    resolve(first, fourth)
    assert list(principals._cache) == [first, second, third, fourth]
    # The cache is full: the fifth pushes out the two expired entries, not the oldest ones.
    resolve(fifth)
    assert list(principals._cache) == [first, fourth, fifth]


def test_a_token_signed_with_another_key_is_refused_after_a_good_one() -> None:
    """The signing key is checked once (accounts/access.py): a verified token does not make
    the next one, signed with another key, pass."""
    good = issue_access_token(user_id=7, session_id="s-good")
    assert decode_access_token(good).user_id == 7
    forged = jwt.encode(
        {"sub": "7", "sid": "s-forged", "typ": "access", "iat": int(clock.now().timestamp()),
         "exp": int(clock.now().timestamp()) + 600},
        b"x" * 32,
        algorithm="HS256",
    )  # fmt: skip
    with pytest.raises(Unauthenticated):
        decode_access_token(forged)


def test_an_asymmetric_key_is_still_refused_as_an_hmac_secret() -> None:
    """PyJWT's check that an HMAC secret is not a public key still runs, once per key."""
    public_key = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQ\n-----END PUBLIC KEY-----"
    token = jwt.encode({"sub": "1"}, b"y" * 32, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(jwt.InvalidKeyError):
            _JWT.decode(token, public_key, algorithms=["HS256"])

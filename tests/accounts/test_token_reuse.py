"""A client sends the same access token with every request, and the server keeps the
tokens it verified (accounts.tokens): what it kept must never outlive what the token
allows, nor stand in for another token's text."""

from __future__ import annotations

from datetime import timedelta

import httpx

from gonghui import clock
from tests.fixtures import StaffFactory


def test_a_token_accepted_before_it_expires_is_refused_once_it_has(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    staff = make_staff(None, None)
    assert api.get("/api/v1/ping", headers=staff.headers).status_code == 200
    clock.advance(timedelta(minutes=16))
    resp = api.get("/api/v1/ping", headers=staff.headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "accounts.token_expired"


def test_a_token_with_a_changed_signature_is_refused_after_the_real_one_was_accepted(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    staff = make_staff(None, None)
    token = staff.headers["Authorization"].removeprefix("Bearer ")
    assert api.get("/api/v1/ping", headers=staff.headers).status_code == 200
    head, claims, signature = token.split(".")
    forged = f"{head}.{claims}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    resp = api.get("/api/v1/ping", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "accounts.token_invalid"


def test_a_revoked_sign_in_is_refused_although_its_token_was_accepted(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    staff = make_staff(None, None)
    assert api.get("/api/v1/ping", headers=staff.headers).status_code == 200
    assert api.post("/api/v1/auth/logout", headers=staff.headers).status_code in (200, 204)
    resp = api.get("/api/v1/ping", headers=staff.headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "accounts.session_revoked"

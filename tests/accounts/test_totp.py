"""Staff two-step sign-in: enrol with a confirmed code, sign in with password then code,
codes used once, wrong codes lock, turning it off needs a current code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from gonghui import clock
from gonghui.accounts.models import TotpCredential
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.settings import get_settings
from tests.fixtures import (
    PASSWORD,
    PhoneUserFactory,
    Staff,
    StaffFactory,
    Tree,
    totp_code_now,
    wrong_totp_code,
)


def password_login(api: httpx.Client, username: str) -> dict[str, Any]:
    resp = api.post("/api/v1/auth/password", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def enrol(api: httpx.Client, staff: Staff) -> str:
    resp = api.post("/api/v1/auth/totp/enrol", headers=staff.headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["otpauth_uri"].startswith(f"otpauth://totp/gonghui:{staff.username}?secret=")
    return str(body["secret"])


def enrolled(api: httpx.Client, staff: Staff) -> str:
    secret = enrol(api, staff)
    resp = api.post(
        "/api/v1/auth/totp/confirm", json={"code": totp_code_now(secret)}, headers=staff.headers
    )
    assert resp.status_code == 200, resp.text
    return secret


def audit_actions(user_id: int) -> list[str]:
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_id == str(user_id), AuditEntry.action.like("accounts.totp%"))
            .order_by(AuditEntry.id)
        )
        return list(rows)


def credential(user_id: int) -> TotpCredential | None:
    with unit_of_work(read_only=True) as session:
        return session.get(TotpCredential, user_id)


def test_enrolment_is_active_only_after_a_confirming_code(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a)
    secret = enrol(api, staff)
    status = api.get("/api/v1/auth/totp", headers=staff.headers)
    assert status.json() == {"enabled": False}
    # Pending: the password alone still signs in.
    assert "access_token" in password_login(api, staff.username)

    wrong = api.post(
        "/api/v1/auth/totp/confirm", json={"code": wrong_totp_code(secret)}, headers=staff.headers
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "accounts.totp_invalid"
    assert wrong.json()["error"]["details"] == {"attempts_left": 4}
    assert api.get("/api/v1/auth/totp", headers=staff.headers).json() == {"enabled": False}
    assert audit_actions(staff.user_id) == []

    right = api.post(
        "/api/v1/auth/totp/confirm", json={"code": totp_code_now(secret)}, headers=staff.headers
    )
    assert right.status_code == 200, right.text
    assert api.get("/api/v1/auth/totp", headers=staff.headers).json() == {"enabled": True}
    assert audit_actions(staff.user_id) == ["accounts.totp_enabled"]
    again = api.post("/api/v1/auth/totp/enrol", headers=staff.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "accounts.totp_already_enabled"


def test_the_secret_is_stored_sealed(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a)
    secret = enrol(api, staff)
    row = credential(staff.user_id)
    assert row is not None
    assert secret.encode() not in row.secret_enc
    assert len(row.secret_enc) == 1 + 12 + len(secret) + 16  # version, nonce, text, tag


def test_sign_in_needs_password_then_a_current_code(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a)
    secret = enrolled(api, staff)
    clock.advance(timedelta(seconds=30))  # the confirming code's step is spent

    first = password_login(api, staff.username)
    assert "access_token" not in first
    assert first["totp_required"] is True
    assert first["expires_in"] == get_settings().otp_ttl_s

    bad = api.post(
        "/api/v1/auth/totp/login",
        json={"challenge": first["challenge"], "code": wrong_totp_code(secret)},
    )
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "accounts.totp_invalid"

    good = api.post(
        "/api/v1/auth/totp/login",
        json={"challenge": first["challenge"], "code": totp_code_now(secret)},
    )
    assert good.status_code == 200, good.text
    me = api.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {good.json()['access_token']}"}
    )
    assert me.json()["user_id"] == staff.user_id


def test_a_code_is_accepted_only_once(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a)
    secret = enrolled(api, staff)
    clock.advance(timedelta(seconds=30))
    code = totp_code_now(secret)
    one = password_login(api, staff.username)["challenge"]
    two = password_login(api, staff.username)["challenge"]
    assert (
        api.post("/api/v1/auth/totp/login", json={"challenge": one, "code": code}).status_code
        == 200
    )
    reused = api.post("/api/v1/auth/totp/login", json={"challenge": two, "code": code})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "accounts.totp_reused"
    assert "access_token" not in reused.json()

    # The next step's code is fresh.
    clock.advance(timedelta(seconds=30))
    fresh = api.post(
        "/api/v1/auth/totp/login", json={"challenge": two, "code": totp_code_now(secret)}
    )
    assert fresh.status_code == 200, fresh.text


def test_wrong_codes_lock_the_factor_for_a_while(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a)
    secret = enrolled(api, staff)
    clock.advance(timedelta(seconds=30))
    challenge = password_login(api, staff.username)["challenge"]
    limit = get_settings().otp_max_attempts
    answers = [
        api.post(
            "/api/v1/auth/totp/login",
            json={"challenge": challenge, "code": wrong_totp_code(secret)},
        ).json()["error"]
        for _ in range(limit)
    ]
    assert [a["details"]["attempts_left"] for a in answers] == list(range(limit - 1, -1, -1))
    assert answers[-1]["code"] == "accounts.totp_locked"

    locked = api.post(
        "/api/v1/auth/totp/login", json={"challenge": challenge, "code": totp_code_now(secret)}
    )
    assert locked.status_code == 401
    assert locked.json()["error"]["code"] == "accounts.totp_locked"
    # Disabling is behind the same lock.
    disable = api.post(
        "/api/v1/auth/totp/disable", json={"code": totp_code_now(secret)}, headers=staff.headers
    )
    assert disable.json()["error"]["code"] == "accounts.totp_locked"

    clock.advance(timedelta(seconds=get_settings().otp_ttl_s + 1))
    challenge = password_login(api, staff.username)["challenge"]
    after = api.post(
        "/api/v1/auth/totp/login", json={"challenge": challenge, "code": totp_code_now(secret)}
    )
    assert after.status_code == 200, after.text


def test_an_expired_or_forged_challenge_is_refused(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a)
    secret = enrolled(api, staff)
    challenge = password_login(api, staff.username)["challenge"]
    forged = challenge[:-4] + ("AAAA" if not challenge.endswith("AAAA") else "BBBB")
    refused = api.post(
        "/api/v1/auth/totp/login", json={"challenge": forged, "code": totp_code_now(secret)}
    )
    assert refused.json()["error"]["code"] == "accounts.totp_challenge_invalid"
    clock.advance(timedelta(seconds=get_settings().otp_ttl_s + 30))
    expired = api.post(
        "/api/v1/auth/totp/login", json={"challenge": challenge, "code": totp_code_now(secret)}
    )
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "accounts.totp_challenge_invalid"
    # Neither refusal counted as a wrong code.
    row = credential(staff.user_id)
    assert row is not None
    assert row.failed_attempts == 0


def test_disabling_needs_a_current_code(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a)
    secret = enrolled(api, staff)
    clock.advance(timedelta(seconds=30))
    wrong = api.post(
        "/api/v1/auth/totp/disable", json={"code": wrong_totp_code(secret)}, headers=staff.headers
    )
    assert wrong.status_code == 401
    assert api.get("/api/v1/auth/totp", headers=staff.headers).json() == {"enabled": True}

    right = api.post(
        "/api/v1/auth/totp/disable", json={"code": totp_code_now(secret)}, headers=staff.headers
    )
    assert right.status_code == 200, right.text
    assert right.json() == {"enabled": False}
    assert credential(staff.user_id) is None
    assert audit_actions(staff.user_id) == ["accounts.totp_enabled", "accounts.totp_disabled"]
    assert "access_token" in password_login(api, staff.username)
    not_on = api.post(
        "/api/v1/auth/totp/disable", json={"code": totp_code_now(secret)}, headers=staff.headers
    )
    assert not_on.status_code == 409


def test_members_cannot_enrol(api: httpx.Client, make_phone_user: PhoneUserFactory) -> None:
    member = make_phone_user()
    resp = api.post("/api/v1/auth/totp/enrol", headers=member.headers)
    assert resp.status_code == 403
    assert credential(member.user_id) is None

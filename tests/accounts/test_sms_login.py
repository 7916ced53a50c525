"""Signing in with a phone number and an SMS code, and the rules that stop abuse."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import clock
from gonghui.accounts.models import AuthSession, Identity, Provider, User
from gonghui.db import unit_of_work
from gonghui.integrations.sms import outbox_path
from gonghui.pii import PiiField, blind_index
from gonghui.settings import get_settings
from tests.accounts.helpers import (
    bearer,
    count_users,
    last_dev_code,
    otp_rows,
    send_code,
    sms_login,
)
from tests.fixtures import PhoneUserFactory

pytestmark = pytest.mark.database_fallback

PHONE = "13800138000"


def assert_retry_after(resp: httpx.Response, seconds: int) -> None:
    """Retry-After counts down on the real clock too, so a slow run may have lost a second
    or two since the test moved the clock."""
    assert seconds - 3 <= int(resp.headers["retry-after"]) <= seconds


def _to_local_morning() -> None:
    """Move the clock to 10:00 tomorrow, local time, so a test's day does not roll over."""
    tomorrow_morning = clock.start_of_local_day(clock.now() + timedelta(days=1)) + timedelta(
        hours=10
    )
    clock.advance(tomorrow_morning - clock.now())


def test_first_sms_sign_in_creates_the_user_and_later_ones_find_them(
    api: httpx.Client,
) -> None:
    sent = send_code(api, PHONE)
    assert sent.status_code == 200
    assert sent.json() == {"phone": "138****8000", "expires_in": 300, "resend_after": 60}
    first = sms_login(api, PHONE, last_dev_code(api, PHONE))
    assert first.status_code == 200, first.text
    assert set(first.json()) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "user_id",
    }
    me = api.get("/api/v1/auth/me", headers=bearer(first.json())).json()
    assert me["user_id"] == first.json()["user_id"]
    assert me["phone"] == "138****8000"

    clock.advance(timedelta(seconds=61))
    assert send_code(api, "+86 138-0013-8000").status_code == 200
    second = sms_login(api, "+8613800138000", last_dev_code(api, PHONE), channel="channels")
    assert second.status_code == 200
    assert second.json()["user_id"] == first.json()["user_id"]
    assert count_users() == 1
    with unit_of_work(read_only=True) as session:
        user = session.get(User, first.json()["user_id"])
        assert user is not None
        assert user.phone_hash == blind_index(PiiField.PHONE, PHONE)
        assert PHONE.encode() not in (user.phone_enc or b"")
        identities = session.scalars(select(Identity).where(Identity.user_id == user.id)).all()
        assert [(i.provider, i.subject) for i in identities] == [
            (Provider.PHONE, blind_index(PiiField.PHONE, PHONE).hex())
        ]
        channels = session.scalars(
            select(AuthSession.channel)
            .where(AuthSession.user_id == user.id)
            .order_by(AuthSession.created_at)
        ).all()
        assert channels == ["h5", "channels"]


def test_phone_numbers_outside_the_mainland_format_are_refused(api: httpx.Client) -> None:
    for bad in ("12800138000", "1380013800", "+1 415 555 0100", "138001380001"):
        resp = send_code(api, bad)
        assert resp.status_code == 422, bad
        error = resp.json()["error"]
        assert error["code"] == "accounts.phone_invalid"
        assert error["details"][0]["field"] == "phone"
    assert otp_rows() == []


def test_codes_are_never_stored_in_plaintext(api: httpx.Client) -> None:
    assert send_code(api, PHONE).status_code == 200
    code = last_dev_code(api, PHONE)
    (row,) = otp_rows()
    assert len(row.code_hash) == 32
    assert code.encode() not in row.code_hash
    assert code not in row.code_hash.hex()
    assert row.phone_hash == blind_index(PiiField.PHONE, PHONE)
    with unit_of_work(read_only=True) as session:
        raw = session.execute(select(*row.__table__.columns)).one()
    for value in raw:
        assert code not in str(value)
        assert PHONE not in str(value)


def test_the_development_outbox_keeps_no_phone_number(api: httpx.Client) -> None:
    assert send_code(api, PHONE).status_code == 200
    outbox = api.get("/_sim/sms/outbox", params={"phone": PHONE}).json()
    assert outbox[-1]["phone"] == "138****8000"
    assert outbox[-1]["text"].endswith(f"验证码为{outbox[-1]['code']}，5分钟内有效，请勿泄露。")
    assert PHONE not in outbox_path().read_text(encoding="utf-8")


def test_wrong_codes_lock_the_code_and_the_right_one_is_then_refused(api: httpx.Client) -> None:
    max_attempts = get_settings().otp_max_attempts
    assert send_code(api, PHONE).status_code == 200
    code = last_dev_code(api, PHONE)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for attempt in range(1, max_attempts + 1):
        resp = sms_login(api, PHONE, wrong)
        assert resp.status_code == 401
        error = resp.json()["error"]
        left = max_attempts - attempt
        assert error["code"] == ("accounts.otp_invalid" if left else "accounts.otp_locked")
        assert error["details"] == {"attempts_left": left}
        # The failure is counted although the request failed.
        assert otp_rows()[0].attempts == attempt
    right = sms_login(api, PHONE, code)
    assert right.status_code == 401
    assert right.json()["error"]["code"] == "accounts.otp_locked"
    assert otp_rows()[0].attempts == max_attempts
    assert otp_rows()[0].consumed_at is None
    assert count_users() == 0


def test_an_expired_code_is_refused(api: httpx.Client) -> None:
    assert send_code(api, PHONE).status_code == 200
    code = last_dev_code(api, PHONE)
    clock.advance(timedelta(seconds=get_settings().otp_ttl_s + 1))
    resp = sms_login(api, PHONE, code)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "accounts.otp_expired"
    assert count_users() == 0


def test_a_used_code_cannot_sign_in_again(api: httpx.Client) -> None:
    assert send_code(api, PHONE).status_code == 200
    code = last_dev_code(api, PHONE)
    assert sms_login(api, PHONE, code).status_code == 200
    again = sms_login(api, PHONE, code)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "accounts.otp_invalid"


def test_only_the_newest_code_counts(api: httpx.Client) -> None:
    assert send_code(api, PHONE).status_code == 200
    old = last_dev_code(api, PHONE)
    clock.advance(timedelta(seconds=61))
    assert send_code(api, PHONE).status_code == 200
    new = last_dev_code(api, PHONE)
    if old != new:
        assert sms_login(api, PHONE, old).json()["error"]["code"] == "accounts.otp_invalid"
    assert sms_login(api, PHONE, new).status_code == 200


def test_resend_within_the_cooldown_answers_429_with_retry_after(api: httpx.Client) -> None:
    cooldown = get_settings().otp_resend_cooldown_s
    assert send_code(api, PHONE).status_code == 200
    clock.advance(timedelta(seconds=20))
    resp = send_code(api, PHONE)
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "accounts.otp_resend_cooldown"
    assert_retry_after(resp, cooldown - 20)
    assert len(otp_rows()) == 1
    clock.advance(timedelta(seconds=cooldown - 20))
    assert send_code(api, PHONE).status_code == 200
    assert len(otp_rows()) == 2


def test_per_phone_daily_cap(api: httpx.Client) -> None:
    settings = get_settings()
    _to_local_morning()
    for _ in range(settings.otp_max_per_phone_per_day):
        assert send_code(api, PHONE).status_code == 200
        clock.advance(timedelta(seconds=settings.otp_resend_cooldown_s))
    resp = send_code(api, PHONE)
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "accounts.otp_phone_throttled"
    # 10:10 local: 13 h 50 min to midnight (less the real seconds this test has taken).
    assert_retry_after(resp, 13 * 3600 + 50 * 60)
    next_day = clock.start_of_local_day(clock.now() + timedelta(days=1))
    assert len(otp_rows()) == settings.otp_max_per_phone_per_day
    # Another phone from the same network is not affected; the next local day is fresh.
    assert send_code(api, "13900139000").status_code == 200
    clock.advance(next_day - clock.now())
    assert send_code(api, PHONE).status_code == 200


def test_per_ip_hourly_cap(api: httpx.Client) -> None:
    limit = get_settings().otp_max_per_ip_per_hour
    for i in range(limit):
        assert send_code(api, f"1390000{i:04d}").status_code == 200
    clock.advance(timedelta(minutes=10))
    resp = send_code(api, "13700137000")
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "accounts.otp_ip_throttled"
    assert_retry_after(resp, 50 * 60)
    assert len(otp_rows()) == limit
    clock.advance(timedelta(minutes=50))
    assert send_code(api, "13700137000").status_code == 200


def test_two_simultaneous_sign_ins_with_one_code_yield_one_token_pair(
    api: httpx.Client, server: str
) -> None:
    assert send_code(api, PHONE).status_code == 200
    code = last_dev_code(api, PHONE)
    barrier = threading.Barrier(4)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def race() -> None:
        with httpx.Client(base_url=server, timeout=30) as client:
            barrier.wait()
            resp = sms_login(client, PHONE, code)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 401, 401, 401]
    assert {r.json()["error"]["code"] for r in results if r.status_code == 401} == {
        "accounts.otp_invalid"
    }
    assert count_users() == 1
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(AuthSession)) == 1


def test_a_signed_in_user_links_a_phone(api: httpx.Client) -> None:
    assert send_code(api, PHONE).status_code == 200
    owner = sms_login(api, PHONE, last_dev_code(api, PHONE)).json()
    other_phone = "13600136000"
    assert send_code(api, other_phone).status_code == 200
    other = sms_login(api, other_phone, last_dev_code(api, other_phone)).json()

    # The other user cannot take the owner's phone, even with a valid code for it.
    clock.advance(timedelta(seconds=61))
    assert send_code(api, PHONE, purpose="link").status_code == 200
    taken = api.post(
        "/api/v1/auth/phone/link",
        json={"phone": PHONE, "code": last_dev_code(api, PHONE)},
        headers=bearer(other),
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "accounts.phone_taken"

    # A login code does not link, and a link code does not sign in.
    new_phone = "13500135000"
    assert send_code(api, new_phone).status_code == 200
    wrong_purpose = api.post(
        "/api/v1/auth/phone/link",
        json={"phone": new_phone, "code": last_dev_code(api, new_phone)},
        headers=bearer(other),
    )
    assert wrong_purpose.status_code == 401
    clock.advance(timedelta(seconds=61))
    assert send_code(api, new_phone, purpose="link").status_code == 200
    link_code = last_dev_code(api, new_phone)
    linked = api.post(
        "/api/v1/auth/phone/link",
        json={"phone": new_phone, "code": link_code},
        headers=bearer(other),
    )
    assert linked.status_code == 200, linked.text
    assert linked.json() == {"user_id": other["user_id"], "phone": "135****5000"}
    clock.advance(timedelta(seconds=61))
    assert send_code(api, new_phone).status_code == 200
    again = sms_login(api, new_phone, last_dev_code(api, new_phone))
    assert again.json()["user_id"] == other["user_id"]
    assert owner["user_id"] != other["user_id"]
    assert count_users() == 2


def test_the_shared_fixture_signs_in_phone_users(make_phone_user: PhoneUserFactory) -> None:
    first = make_phone_user()
    second = make_phone_user(channel="mini")
    assert first.user_id != second.user_id
    assert count_users() == 2

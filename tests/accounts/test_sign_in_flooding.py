"""Sign-in flooding: password guesses are throttled per account and per address (IPv6 by
its /64), the password hash is checked while no write transaction is open, and the SMS
code goes out only once it is committed."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text

from gonghui import clock
from gonghui.accounts import otp
from gonghui.accounts import service as accounts
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import AuthSession, OtpCode
from gonghui.accounts.service import create_staff_user
from gonghui.db import get_engine, read_sync, unit_of_work
from gonghui.errors import RateLimited, Unauthenticated
from gonghui.integrations.sms import OtpMessage
from gonghui.settings import get_settings
from tests.fixtures import PASSWORD

pytestmark = pytest.mark.database_fallback

USERNAME = "operator1"


@pytest.fixture
def staff_user() -> int:
    with unit_of_work() as session:
        return create_staff_user(session, username=USERNAME, password=PASSWORD).id


def _login(api: httpx.Client, username: str, password: str) -> httpx.Response:
    return api.post("/api/v1/auth/password", json={"username": username, "password": password})


def _sessions_of(user_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        stmt = select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user_id)
        return int(session.scalar(stmt) or 0)


def test_password_guessing_on_one_account_is_throttled(api: httpx.Client, staff_user: int) -> None:
    for _ in range(accounts.FAILURES_PER_ACCOUNT):
        assert _login(api, USERNAME, "wrong-password-x").status_code == 401
    refused = _login(api, USERNAME, PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "accounts.sign_in_throttled"
    assert 0 < int(refused.headers["Retry-After"]) <= accounts.SIGN_IN_WINDOW_S
    assert _sessions_of(staff_user) == 0
    clock.advance(timedelta(seconds=accounts.SIGN_IN_WINDOW_S))
    assert _login(api, USERNAME, PASSWORD).status_code == 200
    assert _sessions_of(staff_user) == 1


def test_one_address_cannot_flood_password_sign_in(api: httpx.Client, staff_user: int) -> None:
    for n in range(accounts.ATTEMPTS_PER_ADDRESS):
        assert _login(api, f"nobody{n}", "wrong-password-x").status_code == 401
    refused = _login(api, USERNAME, PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "accounts.sign_in_throttled"
    assert _sessions_of(staff_user) == 0


def _sign_in(ip: str) -> None:
    with unit_of_work() as session:
        accounts.sign_in_with_password(
            session, username=f"nobody-{ip}", password="wrong-password-x", ip=ip
        )


@pytest.mark.usefixtures("database")
def test_ipv6_addresses_of_one_64_share_the_sign_in_limit() -> None:
    for n in range(accounts.ATTEMPTS_PER_ADDRESS):
        with pytest.raises(Unauthenticated):
            _sign_in(f"2001:db8:1:2::{n + 1:x}")
    with pytest.raises(RateLimited) as refused:
        _sign_in("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert refused.value.code == AccountsError.SIGN_IN_THROTTLED
    with pytest.raises(Unauthenticated):
        _sign_in("2001:db8:1:3::1")  # the next /64 is another address


def _another_writer_can_start() -> bool:
    """Whether a second connection could open a write transaction at this moment (no
    transaction of the server's holds the database's write lock)."""
    settings = get_settings()
    if settings.is_sqlite:
        conn = sqlite3.connect(settings.data_dir / "gonghui.db", timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    with get_engine().connect() as conn:
        open_transactions = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        ).scalar()
        conn.rollback()
    return open_transactions == 0


def test_password_is_checked_while_no_write_transaction_is_open(
    api: httpx.Client, staff_user: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real: Callable[[str | None, str], bool] = accounts.verify_password

    def probing(stored_hash: str | None, password: str) -> bool:
        seen.append(_another_writer_can_start())
        return real(stored_hash, password)

    monkeypatch.setattr(accounts, "verify_password", probing)
    assert _login(api, USERNAME, "wrong-password-x").status_code == 401
    assert _login(api, USERNAME, PASSWORD).status_code == 200
    assert seen == [True, True]


def test_the_sms_goes_out_after_its_code_is_committed(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, bool]] = []

    class Probe:
        def send_code(self, message: OtpMessage) -> None:
            committed = read_sync(
                lambda c: c.execute(select(func.count()).select_from(OtpCode)).scalar_one()
            )
            seen.append((committed, _another_writer_can_start()))

    monkeypatch.setattr(otp, "get_sms_sender", Probe)
    resp = api.post("/api/v1/auth/sms/send", json={"phone": "13800138000"})
    assert resp.status_code == 200, resp.text
    assert seen == [(1, True)]


class _Capture:
    def send_code(self, message: OtpMessage) -> None:
        pass


def _send(phone: str, ip: str) -> None:
    with unit_of_work() as session:
        otp.send_code(session, phone=phone, ip=ip, sender=_Capture())


def _codes() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(OtpCode)) or 0)


@pytest.mark.usefixtures("database")
def test_sms_codes_per_address_count_an_ipv6_64_as_one_address() -> None:
    limit = get_settings().otp_max_per_ip_per_hour
    for n in range(limit):
        _send(f"1390000{n:04d}", f"2001:db8:7:7::{n + 1:x}")
    with pytest.raises(RateLimited) as refused:
        _send("13700137000", "2001:db8:7:7:abcd::1")
    assert refused.value.code == AccountsError.OTP_IP_THROTTLED
    assert _codes() == limit
    _send("13700137000", "2001:db8:7:8::1")
    assert _codes() == limit + 1


def test_the_console_sign_in_page_says_when_it_is_throttled(
    api: httpx.Client, staff_user: int
) -> None:
    form = {"username": USERNAME, "password": "wrong-password-x"}
    for _ in range(accounts.FAILURES_PER_ACCOUNT):
        assert "用户名或密码不正确" in api.post("/console/login", data=form).text
    page = api.post("/console/login", data={"username": USERNAME, "password": PASSWORD})
    assert page.status_code == 200
    assert "登录尝试次数过多，请稍后再试" in page.text
    assert "gh_at" not in page.headers.get("set-cookie", "")
    assert _sessions_of(staff_user) == 0

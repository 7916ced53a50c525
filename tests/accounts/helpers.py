"""Small steps the accounts stories share: ask for a code, read it, sign in."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from gonghui.accounts.models import OtpCode, User
from gonghui.db import unit_of_work
from gonghui.settings import get_settings


def send_code(api: httpx.Client, phone: str, purpose: str = "login") -> httpx.Response:
    return api.post("/api/v1/auth/sms/send", json={"phone": phone, "purpose": purpose})


def last_dev_code(api: httpx.Client, phone: str) -> str:
    """What the development sink delivered, read the way the development H5 reads it."""
    resp = api.get("/_sim/sms/outbox", params={"phone": phone})
    assert resp.status_code == 200
    messages = resp.json()
    assert messages, f"no SMS for {phone}"
    return str(messages[-1]["code"])


def sms_login(api: httpx.Client, phone: str, code: str, **extra: Any) -> httpx.Response:
    return api.post("/api/v1/auth/sms/login", json={"phone": phone, "code": code, **extra})


def bearer(token_body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_body['access_token']}"}


def count_users() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def otp_rows() -> list[OtpCode]:
    with unit_of_work(read_only=True) as session:
        return list(session.scalars(select(OtpCode).order_by(OtpCode.id)))


SIM = "/_sim/wechat/_control"


def login_code(api: httpx.Client, appid: str, person: str, **extra: Any) -> str:
    resp = api.post(f"{SIM}/login-code", json={"appid": appid, "person": person, **extra})
    assert resp.status_code == 200
    return str(resp.json()["code"])


def mini_login(api: httpx.Client, person: str, **extra: Any) -> httpx.Response:
    code = login_code(api, get_settings().wechat_mp_appid, person)
    return api.post("/api/v1/auth/wechat/mini", json={"code": code, **extra})

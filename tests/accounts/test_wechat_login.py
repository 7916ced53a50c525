"""Signing in through WeChat: one person, one account across every channel."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui import clock
from gonghui.accounts.models import AuthSession, Identity, Provider
from gonghui.db import unit_of_work
from gonghui.integrations import wechat_simulator
from gonghui.settings import get_settings
from tests.accounts.helpers import (
    SIM,
    bearer,
    count_users,
    last_dev_code,
    login_code,
    mini_login,
    send_code,
    sms_login,
)


def phone_code(api: httpx.Client, phone: str) -> str:
    resp = api.post(
        f"{SIM}/phone-code", json={"appid": get_settings().wechat_mp_appid, "phone": phone}
    )
    assert resp.status_code == 200
    return str(resp.json()["code"])


def official_login(api: httpx.Client, person: str, **extra: Any) -> httpx.Response:
    code = login_code(api, get_settings().wechat_oa_appid, person, nickname="小李")
    return api.post("/api/v1/auth/wechat/official", json={"code": code, **extra})


def app_login(api: httpx.Client, person: str) -> httpx.Response:
    code = login_code(api, get_settings().wechat_app_appid, person)
    return api.post("/api/v1/auth/wechat/app", json={"code": code})


def token_fetches() -> int:
    return wechat_simulator.calls().get("cgi-bin/stable_token", 0)


def test_mini_program_sign_in_creates_the_user_once(api: httpx.Client) -> None:
    first = mini_login(api, "li")
    assert first.status_code == 200, first.text
    second = mini_login(api, "li")
    assert second.status_code == 200
    assert second.json()["user_id"] == first.json()["user_id"]
    assert count_users() == 1
    identities = api.get("/api/v1/auth/identities", headers=bearer(first.json())).json()
    assert [(i["provider"], i["app_id"]) for i in identities] == [
        ("wechat_mini", get_settings().wechat_mp_appid)
    ]


def test_the_same_unionid_from_every_channel_is_the_same_user(api: httpx.Client) -> None:
    mini = mini_login(api, "li").json()
    official = official_login(api, "li")
    assert official.status_code == 200, official.text
    assert official.json()["user_id"] == mini["user_id"]
    mobile = app_login(api, "li")
    assert mobile.status_code == 200, mobile.text
    assert mobile.json()["user_id"] == mini["user_id"]
    other = official_login(api, "wang").json()
    assert other["user_id"] != mini["user_id"]
    # A person first met through web-page OAuth is named by their WeChat nickname.
    assert api.get("/api/v1/auth/me", headers=bearer(other)).json()["display_name"] == "小李"
    assert count_users() == 2
    identities = api.get("/api/v1/auth/identities", headers=bearer(mini)).json()
    assert sorted(i["provider"] for i in identities) == [
        "wechat_app",
        "wechat_mini",
        "wechat_official",
    ]


def test_without_a_unionid_two_apps_are_two_users(api: httpx.Client) -> None:
    settings = get_settings()
    mini_code = login_code(api, settings.wechat_mp_appid, "zhao", with_unionid=False)
    oa_code = login_code(api, settings.wechat_oa_appid, "zhao", with_unionid=False)
    a = api.post("/api/v1/auth/wechat/mini", json={"code": mini_code}).json()
    b = api.post("/api/v1/auth/wechat/official", json={"code": oa_code}).json()
    assert a["user_id"] != b["user_id"]


def test_video_channel_entries_carry_their_channel_tag(api: httpx.Client) -> None:
    resp = mini_login(api, "chen", channel="channels")
    assert resp.status_code == 200
    official = official_login(api, "chen", channel="channels")
    assert official.json()["user_id"] == resp.json()["user_id"]
    with unit_of_work(read_only=True) as session:
        identity = session.scalar(
            select(Identity).where(
                Identity.user_id == resp.json()["user_id"],
                Identity.provider == Provider.WECHAT_MINI,
            )
        )
        assert identity is not None
        assert identity.channel == "channels"
        channels = session.scalars(
            select(AuthSession.channel).where(AuthSession.user_id == resp.json()["user_id"])
        ).all()
        assert sorted(channels) == ["channels", "channels"]
    bad = mini_login(api, "chen", channel="Not A Tag")
    assert bad.status_code == 422


def test_mini_program_phone_of_an_existing_user_links_to_that_user(api: httpx.Client) -> None:
    phone = "13800138000"
    assert send_code(api, phone).status_code == 200
    by_sms = sms_login(api, phone, last_dev_code(api, phone)).json()
    resp = mini_login(api, "sun", phone_code=phone_code(api, phone))
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == by_sms["user_id"]
    assert count_users() == 1
    # A new person whose phone is new gets the phone on their new account.
    fresh = mini_login(api, "zhou", phone_code=phone_code(api, "13900139000")).json()
    me = api.get("/api/v1/auth/me", headers=bearer(fresh)).json()
    assert me["phone"] == "139****9000"
    assert count_users() == 2


@pytest.mark.parametrize(
    ("endpoint", "appid_setting"),
    [("mini", "wechat_mp_appid"), ("official", "wechat_oa_appid"), ("app", "wechat_app_appid")],
)
def test_bad_and_used_codes_get_the_envelope_and_create_nobody(
    api: httpx.Client, endpoint: str, appid_setting: str
) -> None:
    url = f"/api/v1/auth/wechat/{endpoint}"
    bad = api.post(url, json={"code": "made-up"})
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "wechat.code_invalid"
    assert bad.json()["error"]["details"]["errcode"] == 40029
    code = login_code(api, getattr(get_settings(), appid_setting), "li")
    assert api.post(url, json={"code": code}).status_code == 200
    used = api.post(url, json={"code": code})
    assert used.status_code == 401
    assert used.json()["error"]["code"] == "wechat.code_used"
    assert used.json()["error"]["details"]["errcode"] == 40163
    assert count_users() == 1


def test_codes_expire_after_five_minutes(api: httpx.Client) -> None:
    code = login_code(api, get_settings().wechat_mp_appid, "li")
    clock.advance(timedelta(minutes=5, seconds=1))
    resp = api.post("/api/v1/auth/wechat/mini", json={"code": code})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "wechat.code_invalid"
    assert count_users() == 0


def test_a_code_of_another_app_is_invalid(api: httpx.Client) -> None:
    code = login_code(api, get_settings().wechat_oa_appid, "li")
    resp = api.post("/api/v1/auth/wechat/mini", json={"code": code})
    assert resp.json()["error"]["code"] == "wechat.code_invalid"


def test_wechat_rate_limit_is_an_upstream_error(api: httpx.Client) -> None:
    api.post(
        f"{SIM}/fail-next",
        json={"endpoint": "sns/jscode2session", "errcode": 45011, "errmsg": "api minute-quota"},
    )
    resp = mini_login(api, "li")
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "wechat.rate_limited"
    assert count_users() == 0


def test_wrong_app_secret_is_an_upstream_error(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = login_code(api, get_settings().wechat_mp_appid, "li")
    monkeypatch.setattr(get_settings(), "wechat_mp_secret", "wrong")
    resp = api.post("/api/v1/auth/wechat/mini", json={"code": code})
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "wechat.bad_app_credentials"


def test_access_token_is_cached_and_refreshed_when_wechat_rejects_it(api: httpx.Client) -> None:
    assert mini_login(api, "a", phone_code=phone_code(api, "13800000001")).status_code == 200
    assert mini_login(api, "b", phone_code=phone_code(api, "13800000002")).status_code == 200
    assert token_fetches() == 1
    # Another server fetched a fresh token, so ours is no longer valid: 40001, then one
    # forced refresh and the same request succeeds.
    assert api.post(f"{SIM}/revoke-access-tokens").json() == {"revoked": 1}
    resp = mini_login(api, "c", phone_code=phone_code(api, "13800000003"))
    assert resp.status_code == 200, resp.text
    assert token_fetches() == 2
    assert wechat_simulator.calls()["wxa/business/getuserphonenumber"] == 4
    assert mini_login(api, "d", phone_code=phone_code(api, "13800000004")).status_code == 200
    assert token_fetches() == 2


def test_access_token_is_fetched_again_before_it_expires(api: httpx.Client) -> None:
    assert mini_login(api, "a", phone_code=phone_code(api, "13800000001")).status_code == 200
    clock.advance(timedelta(seconds=wechat_simulator.ACCESS_TOKEN_TTL_S - 299))
    assert mini_login(api, "b", phone_code=phone_code(api, "13800000002")).status_code == 200
    assert token_fetches() == 2
    # The fetch happened while the old token was still valid: no request saw 42001.
    assert wechat_simulator.calls()["wxa/business/getuserphonenumber"] == 2


def test_one_new_person_signing_in_through_two_channels_at_once_is_one_user(
    api: httpx.Client, server: str
) -> None:
    settings = get_settings()
    requests = [
        ("/api/v1/auth/wechat/mini", login_code(api, settings.wechat_mp_appid, "race")),
        ("/api/v1/auth/wechat/official", login_code(api, settings.wechat_oa_appid, "race")),
        ("/api/v1/auth/wechat/app", login_code(api, settings.wechat_app_appid, "race")),
    ]
    barrier = threading.Barrier(len(requests))
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def sign_in(url: str, code: str) -> None:
        with httpx.Client(base_url=server, timeout=30) as client:
            barrier.wait()
            resp = client.post(url, json={"code": code})
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=sign_in, args=r) for r in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200, 200]
    assert len({r.json()["user_id"] for r in results}) == 1
    assert count_users() == 1

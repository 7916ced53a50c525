"""A local stand-in for the WeChat API endpoints gonghui uses (development and tests).

The apps it knows are the ones configured in settings (mini program, official account,
mobile app) and those a union registered with "WeChat" through ``/_control/apps`` (as a
union registers its own apps on WeChat's platform), all bound to one open-platform account,
so a test person has one openid per app and one unionid across them. Codes are minted
through ``/_sim/wechat/_control/*`` (what the WeChat client would hand the front end), are
single-use and expire after five minutes of the server clock; access tokens expire after
``expires_in``. The simulator counts calls per endpoint so that tests can see token caching.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from gonghui import clock
from gonghui.settings import get_settings

CODE_TTL = timedelta(minutes=5)
ACCESS_TOKEN_TTL_S = 7200
STABLE_RENEW_S = 300

router = APIRouter(prefix="/_sim/wechat", tags=["simulators"], include_in_schema=False)


@dataclass
class _Code:
    appid: str
    kind: str  # "login" or "phone"
    person: str
    expires_at: datetime
    nickname: str | None = None
    phone: str | None = None
    with_unionid: bool = True
    scope: str = "snsapi_userinfo"
    used: bool = False


@dataclass
class _Token:
    appid: str
    expires_at: datetime
    openid: str | None = None
    unionid: str | None = None
    nickname: str | None = None


@dataclass
class _State:
    codes: dict[str, _Code] = field(default_factory=dict)
    app_tokens: dict[str, _Token] = field(default_factory=dict)
    current_app_token: dict[str, str] = field(default_factory=dict)
    user_tokens: dict[str, _Token] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    fail_next: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Unions' own apps, registered through /_control/apps: appid -> secret.
    apps: dict[str, str] = field(default_factory=dict)
    # One-time subscriptions a user accepted (appid, openid, template_id) -> sends left,
    # and the subscribe messages sent.
    subscriptions: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    subscribe_messages: list[dict[str, Any]] = field(default_factory=list)
    # Official accounts' template messages sent, and the users who unfollowed an account
    # (appid, openid): every openid of an account follows it until then.
    template_messages: list[dict[str, Any]] = field(default_factory=list)
    unfollowed: set[tuple[str, str]] = field(default_factory=set)


_lock = threading.Lock()
_state = _State()


def reset() -> None:
    global _state
    with _lock:
        _state = _State()


def calls() -> dict[str, int]:
    with _lock:
        return dict(_state.calls)


def _registered_apps() -> dict[str, str]:
    s = get_settings()
    return {
        s.wechat_mp_appid: s.wechat_mp_secret,
        s.wechat_oa_appid: s.wechat_oa_secret,
        s.wechat_app_appid: s.wechat_app_secret,
    }


# The apps "registered with WeChat", as configured when the simulator was loaded: a later
# change to the client's settings (a wrong secret) is then refused, as WeChat would.
_APPS = _registered_apps()


def openid_for(appid: str, person: str) -> str:
    return "o" + hashlib.sha256(f"openid|{appid}|{person}".encode()).hexdigest()[:27]


def unionid_for(person: str) -> str:
    return "u" + hashlib.sha256(f"unionid|{person}".encode()).hexdigest()[:27]


def _err(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": f"{errmsg} rid: {secrets.token_hex(4)}"}


def _begin(endpoint: str) -> dict[str, Any] | None:
    """Count the call; an injected failure for this endpoint answers instead."""
    _state.calls[endpoint] += 1
    return _state.fail_next.pop(endpoint, None)


def _check_app(appid: str, secret: str) -> dict[str, Any] | None:
    known = _APPS.get(appid) or _state.apps.get(appid)
    if known is None:
        return _err(40013, "invalid appid")
    if not secrets.compare_digest(known, secret):
        return _err(40125, "invalid appsecret")
    return None


def _take_code(appid: str, code: str, kind: str) -> _Code | dict[str, Any]:
    entry = _state.codes.get(code)
    if entry is None or entry.appid != appid or entry.kind != kind:
        return _err(40029, "invalid code")
    if entry.used:
        return _err(40163, "code been used")
    if entry.expires_at <= clock.now():
        return _err(40029, "invalid code")
    entry.used = True
    return entry


def _exchange_code(
    endpoint: str, appid: str, secret: str, code: str, grant_type: str
) -> _Code | dict[str, Any]:
    """What a login-code exchange checks first (an injected failure, the grant type, the
    app's secret), then its one-time code; an error answer as WeChat gives it otherwise."""
    if (failure := _begin(endpoint)) is not None:
        return failure
    if grant_type != "authorization_code":
        return _err(40002, "invalid grant_type")
    if (bad := _check_app(appid, secret)) is not None:
        return bad
    return _take_code(appid, code, "login")


def _app_token(token: str) -> _Token | dict[str, Any]:
    entry = _state.app_tokens.get(token)
    if entry is None:
        return _err(40001, "invalid credential, access_token is invalid or not latest")
    if entry.expires_at <= clock.now():
        return _err(42001, "access_token expired")
    return entry


# --- the WeChat API ------------------------------------------------------------------


@router.get("/sns/jscode2session")
async def jscode2session(
    appid: str = "", secret: str = "", js_code: str = "", grant_type: str = ""
) -> dict[str, Any]:
    with _lock:
        entry = _exchange_code("sns/jscode2session", appid, secret, js_code, grant_type)
        if isinstance(entry, dict):
            return entry
        body: dict[str, Any] = {
            "openid": openid_for(appid, entry.person),
            "session_key": secrets.token_urlsafe(16),
        }
        if entry.with_unionid:
            body["unionid"] = unionid_for(entry.person)
        return body


def _issue_app_token(appid: str) -> dict[str, Any]:
    token = secrets.token_urlsafe(48)
    _state.app_tokens[token] = _Token(
        appid=appid, expires_at=clock.now() + timedelta(seconds=ACCESS_TOKEN_TTL_S)
    )
    _state.current_app_token[appid] = token
    return {"access_token": token, "expires_in": ACCESS_TOKEN_TTL_S}


@router.get("/cgi-bin/token")
async def token(grant_type: str = "", appid: str = "", secret: str = "") -> dict[str, Any]:
    with _lock:
        if (failure := _begin("cgi-bin/token")) is not None:
            return failure
        if grant_type != "client_credential":
            return _err(40002, "invalid grant_type")
        if (bad := _check_app(appid, secret)) is not None:
            return bad
        return _issue_app_token(appid)


@router.post("/cgi-bin/stable_token")
async def stable_token(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    appid, secret = str(body.get("appid", "")), str(body.get("secret", ""))
    with _lock:
        if (failure := _begin("cgi-bin/stable_token")) is not None:
            return failure
        if body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if (bad := _check_app(appid, secret)) is not None:
            return bad
        current = _state.current_app_token.get(appid)
        entry = _state.app_tokens.get(current) if current else None
        remaining = (entry.expires_at - clock.now()).total_seconds() if entry else 0.0
        if entry is not None and not body.get("force_refresh") and remaining > STABLE_RENEW_S:
            # Normal mode: the same token while it is valid, a new one in its last five
            # minutes (the old one stays valid until it expires).
            return {"access_token": current, "expires_in": int(remaining)}
        return _issue_app_token(appid)


@router.post("/wxa/business/getuserphonenumber")
async def getuserphonenumber(access_token: str = "", body: dict[str, Any] = Body(...)) -> Any:
    with _lock:
        if (failure := _begin("wxa/business/getuserphonenumber")) is not None:
            return failure
        app_token = _app_token(access_token)
        if isinstance(app_token, dict):
            return app_token
        entry = _take_code(app_token.appid, str(body.get("code", "")), "phone")
        if isinstance(entry, dict):
            return entry
        phone = entry.phone or ""
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": phone,
                "purePhoneNumber": phone,
                "countryCode": "86",
                "watermark": {
                    "timestamp": int(clock.now().timestamp()),
                    "appid": app_token.appid,
                },
            },
        }


@router.get("/sns/oauth2/access_token")
async def oauth2_access_token(
    appid: str = "", secret: str = "", code: str = "", grant_type: str = ""
) -> dict[str, Any]:
    with _lock:
        entry = _exchange_code("sns/oauth2/access_token", appid, secret, code, grant_type)
        if isinstance(entry, dict):
            return entry
        openid = openid_for(appid, entry.person)
        unionid = unionid_for(entry.person) if entry.with_unionid else None
        user_token = secrets.token_urlsafe(48)
        _state.user_tokens[user_token] = _Token(
            appid=appid,
            expires_at=clock.now() + timedelta(seconds=ACCESS_TOKEN_TTL_S),
            openid=openid,
            unionid=unionid,
            nickname=entry.nickname,
        )
        body: dict[str, Any] = {
            "access_token": user_token,
            "expires_in": ACCESS_TOKEN_TTL_S,
            "refresh_token": secrets.token_urlsafe(48),
            "openid": openid,
            "scope": entry.scope,
            "is_snapshotuser": 0,
        }
        if unionid is not None:
            body["unionid"] = unionid
        return body


@router.get("/sns/userinfo")
async def userinfo(access_token: str = "", openid: str = "", lang: str = "zh_CN") -> Any:
    with _lock:
        if (failure := _begin("sns/userinfo")) is not None:
            return failure
        entry = _state.user_tokens.get(access_token)
        if entry is None or entry.openid != openid:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if entry.expires_at <= clock.now():
            return _err(42001, "access_token expired")
        body: dict[str, Any] = {
            "openid": entry.openid,
            "nickname": entry.nickname or "微信用户",
            "sex": 0,
            "province": "",
            "city": "",
            "country": "",
            "headimgurl": "",
            "privilege": [],
        }
        if entry.unionid is not None:
            body["unionid"] = entry.unionid
        return body


# Template data: at most this many keys, each value at most this long (WeChat's "thing"
# values hold 20 characters; longer kinds are not simulated).
_MAX_DATA_KEYS = 10
_MAX_VALUE_CHARS = 20


@router.post("/cgi-bin/message/subscribe/send")
async def subscribe_send(access_token: str = "", body: dict[str, Any] = Body(...)) -> Any:
    """A subscribe message: allowed once per acceptance of its template by the user."""
    with _lock:
        if (failure := _begin("cgi-bin/message/subscribe/send")) is not None:
            return failure
        app_token = _app_token(access_token)
        if isinstance(app_token, dict):
            return app_token
        touser, template_id = str(body.get("touser", "")), str(body.get("template_id", ""))
        data = _message_data(body.get("data"))
        if not touser or not template_id:
            return _err(47003, "argument invalid! touser or template_id missing")
        if data is None:
            return _err(47003, "argument invalid! data.value invalid")
        key = (app_token.appid, touser, template_id)
        if _state.subscriptions[key] <= 0:
            return _err(43101, "user refuse to accept the msg")
        _state.subscriptions[key] -= 1
        _state.subscribe_messages.append(
            {
                "appid": app_token.appid,
                "touser": touser,
                "template_id": template_id,
                "page": str(body.get("page", "")),
                "data": data,
            }
        )
        return {"errcode": 0, "errmsg": "ok", "msgid": len(_state.subscribe_messages)}


def _message_data(data: Any) -> dict[str, str] | None:
    """A message's ``data`` as WeChat accepts it ({key: {"value": text}}), or None."""
    if (
        not isinstance(data, dict)
        or not data
        or len(data) > _MAX_DATA_KEYS
        or not all(
            isinstance(v, dict)
            and isinstance(v.get("value"), str)
            and len(v["value"]) <= _MAX_VALUE_CHARS
            for v in data.values()
        )
    ):
        return None
    return {str(k): v["value"] for k, v in data.items()}


@router.post("/cgi-bin/message/template/send")
async def template_send(access_token: str = "", body: dict[str, Any] = Body(...)) -> Any:
    """An official account's template message to a follower; one per ``client_msg_id``
    and user (a repeat answers the first send's msgid)."""
    with _lock:
        if (failure := _begin("cgi-bin/message/template/send")) is not None:
            return failure
        app_token = _app_token(access_token)
        if isinstance(app_token, dict):
            return app_token
        touser, template_id = str(body.get("touser", "")), str(body.get("template_id", ""))
        data = _message_data(body.get("data"))
        if not touser or not template_id or data is None:
            return _err(47003, "argument invalid! touser, template_id or data invalid")
        if (app_token.appid, touser) in _state.unfollowed:
            return _err(43004, "require subscribe")
        client_msg_id = str(body.get("client_msg_id", ""))
        for n, sent in enumerate(_state.template_messages, start=1):
            if client_msg_id and (sent["touser"], sent["client_msg_id"]) == (touser, client_msg_id):
                return {"errcode": 0, "errmsg": "ok", "msgid": n}
        miniprogram = body.get("miniprogram") if isinstance(body.get("miniprogram"), dict) else {}
        _state.template_messages.append(
            {
                "appid": app_token.appid,
                "touser": touser,
                "template_id": template_id,
                "client_msg_id": client_msg_id,
                "pagepath": str((miniprogram or {}).get("pagepath", "")),
                "data": data,
            }
        )
        return {"errcode": 0, "errmsg": "ok", "msgid": len(_state.template_messages)}


def template_messages(touser: str | None = None) -> list[dict[str, Any]]:
    with _lock:
        return [dict(m) for m in _state.template_messages if touser in (None, m["touser"])]


def unfollow(appid: str, openid: str) -> None:
    """The user unfollowed the official account ``appid``."""
    with _lock:
        _state.unfollowed.add((appid, openid))


def accept_subscription(appid: str, openid: str, template_id: str) -> None:
    """The user tapped "allow" for ``template_id`` once (``wx.requestSubscribeMessage``)."""
    with _lock:
        _state.subscriptions[(appid, openid, template_id)] += 1


def subscribe_messages(touser: str | None = None) -> list[dict[str, Any]]:
    with _lock:
        return [dict(m) for m in _state.subscribe_messages if touser in (None, m["touser"])]


# --- control: what the WeChat client app and the test harness do --------------------


class LoginCodeRequest(BaseModel):
    appid: str
    person: str = Field(min_length=1, max_length=64, description="a stable test-person key")
    nickname: str | None = None
    with_unionid: bool = True
    scope: str = "snsapi_userinfo"


class PhoneCodeRequest(BaseModel):
    appid: str
    phone: str = Field(pattern=r"^1[3-9]\d{9}$")


class AppRequest(BaseModel):
    appid: str = Field(pattern=r"^wx[0-9a-f]{16}$")
    secret: str = Field(pattern=r"^[0-9a-zA-Z]{32}$")


class FailureRequest(BaseModel):
    endpoint: str = Field(description="e.g. sns/jscode2session")
    errcode: int
    errmsg: str = "simulated failure"


@router.post("/_control/login-code")
async def mint_login_code(body: LoginCodeRequest) -> dict[str, Any]:
    """A login code (``wx.login`` / OAuth redirect) for ``person`` at ``appid``."""
    code = secrets.token_urlsafe(24)
    with _lock:
        _state.codes[code] = _Code(
            appid=body.appid,
            kind="login",
            person=body.person,
            expires_at=clock.now() + CODE_TTL,
            nickname=body.nickname,
            with_unionid=body.with_unionid,
            scope=body.scope,
        )
    return {
        "code": code,
        "openid": openid_for(body.appid, body.person),
        "unionid": unionid_for(body.person) if body.with_unionid else None,
    }


@router.post("/_control/phone-code")
async def mint_phone_code(body: PhoneCodeRequest) -> dict[str, str]:
    """A phone-number quick verification code (``getPhoneNumber``) for ``phone``."""
    code = secrets.token_urlsafe(24)
    with _lock:
        _state.codes[code] = _Code(
            appid=body.appid,
            kind="phone",
            person="",
            phone=body.phone,
            expires_at=clock.now() + CODE_TTL,
        )
    return {"code": code}


@router.post("/_control/apps")
async def register_app(body: AppRequest) -> dict[str, str]:
    """A union's own app registered with WeChat, under the same open-platform account."""
    with _lock:
        _state.apps[body.appid] = body.secret
    return {"appid": body.appid}


class SubscribeRequest(BaseModel):
    appid: str
    openid: str = Field(min_length=1, max_length=64)
    template_ids: list[str] = Field(min_length=1, max_length=3)


@router.post("/_control/subscribe")
async def subscribe(body: SubscribeRequest) -> dict[str, Any]:
    """What ``wx.requestSubscribeMessage`` records at WeChat when the user accepts."""
    for template_id in body.template_ids:
        accept_subscription(body.appid, body.openid, template_id)
    return {"accepted": body.template_ids}


@router.get("/_control/subscribe-messages")
async def list_subscribe_messages(touser: str = "") -> list[dict[str, Any]]:
    return subscribe_messages(touser or None)


@router.get("/_control/calls")
async def list_calls() -> dict[str, int]:
    return calls()


@router.post("/_control/revoke-access-tokens")
async def revoke_access_tokens() -> dict[str, int]:
    """Invalidate every app access token (as a fetch elsewhere would): next use gets 40001."""
    with _lock:
        n = len(_state.app_tokens)
        _state.app_tokens.clear()
        _state.current_app_token.clear()
    return {"revoked": n}


@router.post("/_control/fail-next")
async def fail_next(body: FailureRequest) -> dict[str, str]:
    with _lock:
        _state.fail_next[body.endpoint] = _err(body.errcode, body.errmsg)
    return {"endpoint": body.endpoint}


@router.post("/_control/reset")
async def reset_state() -> dict[str, str]:
    reset()
    return {"status": "reset"}

"""WeChat login: a client of WeChat's documented HTTP API.

Endpoints used (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/ and
https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html):

- ``GET sns/jscode2session``: mini program login code -> openid, session_key, unionid;
- ``POST cgi-bin/stable_token``: the app's access token (cached until shortly before
  ``expires_in``; dropped and fetched with ``force_refresh`` when WeChat answers 40001
  "invalid credential" or 42001 "access_token expired");
- ``POST wxa/business/getuserphonenumber?access_token=``: the phone-number quick
  verification code -> ``phone_info``;
- ``GET sns/oauth2/access_token`` + ``GET sns/userinfo``: official-account web-page OAuth,
  and the mobile-app OAuth, which is the same call with the mobile app's appid/secret;
- ``POST cgi-bin/message/subscribe/send?access_token=``: a subscribe message to a user who
  accepted its template once (``wx.requestSubscribeMessage``); 43101 when they did not
  (https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html).

WeChat answers HTTP 200 with ``{"errcode": n, "errmsg": "..."}`` on failure; :func:`raise_for`
maps the codes a caller can act on to stable error codes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from gonghui import clock
from gonghui.errors import DomainError, Unauthenticated, UpstreamError
from gonghui.integrations.errors import IntegrationsError
from gonghui.settings import get_settings

TIMEOUT_S = 10.0
# Fetch a new access token this long before WeChat says the current one expires.
TOKEN_REFRESH_MARGIN_S = 300
_TOKEN_INVALID = frozenset({40001, 42001})

_CODE_ERRORS: dict[int, tuple[type[DomainError], IntegrationsError, str]] = {
    40029: (Unauthenticated, IntegrationsError.WECHAT_CODE_INVALID, "the WeChat code is invalid"),
    40163: (Unauthenticated, IntegrationsError.WECHAT_CODE_USED, "the WeChat code was used"),
    40226: (Unauthenticated, IntegrationsError.WECHAT_USER_REFUSED, "WeChat refused this user"),
    43101: (UpstreamError, IntegrationsError.WECHAT_NOT_SUBSCRIBED, "the user did not subscribe"),
    43004: (UpstreamError, IntegrationsError.WECHAT_NOT_FOLLOWING, "the user does not follow"),
    45011: (UpstreamError, IntegrationsError.WECHAT_RATE_LIMITED, "WeChat rate limit reached"),
    40013: (UpstreamError, IntegrationsError.WECHAT_CREDENTIALS, "WeChat: invalid appid"),
    40125: (UpstreamError, IntegrationsError.WECHAT_CREDENTIALS, "WeChat: invalid app secret"),
    -1: (UpstreamError, IntegrationsError.WECHAT_UNAVAILABLE, "WeChat is busy"),
}


@dataclass(frozen=True)
class WeChatApp:
    appid: str
    secret: str


def mini_program() -> WeChatApp:
    s = get_settings()
    return WeChatApp(s.wechat_mp_appid, s.wechat_mp_secret)


def official_account() -> WeChatApp:
    s = get_settings()
    return WeChatApp(s.wechat_oa_appid, s.wechat_oa_secret)


def mobile_app() -> WeChatApp:
    s = get_settings()
    return WeChatApp(s.wechat_app_appid, s.wechat_app_secret)


@dataclass(frozen=True)
class MiniSession:
    openid: str
    unionid: str | None
    session_key: str


@dataclass(frozen=True)
class OAuthUser:
    openid: str
    unionid: str | None
    nickname: str | None


@dataclass(frozen=True)
class PhoneInfo:
    pure_phone_number: str
    country_code: str


def raise_for(body: dict[str, Any]) -> None:
    errcode = int(body.get("errcode") or 0)
    if errcode == 0:
        return
    details = {"errcode": errcode, "errmsg": str(body.get("errmsg", ""))}
    cls, code, message = _CODE_ERRORS.get(
        errcode, (UpstreamError, IntegrationsError.WECHAT_FAILED, "WeChat refused the request")
    )
    raise cls(code, message, details)


class _TokenCache:
    """Access tokens per (base URL, appid); one fetch at a time per app."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, str]) -> str | None:
        hit = self._tokens.get(key)
        return hit[0] if hit is not None and clock.now() < hit[1] else None

    def put(self, key: tuple[str, str], token: str, expires_in: int) -> None:
        margin = min(TOKEN_REFRESH_MARGIN_S, expires_in // 2)
        self._tokens[key] = (token, clock.now() + timedelta(seconds=expires_in - margin))

    def drop(self, key: tuple[str, str], token: str) -> None:
        with self._guard:
            hit = self._tokens.get(key)
            if hit is not None and hit[0] == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


token_cache = _TokenCache()


class WeChatClient:
    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = (base_url or get_settings().resolved_wechat_base_url).rstrip("/")

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            resp = httpx.request(
                method, f"{self.base_url}/{path}", params=params, json=json, timeout=TIMEOUT_S
            )
            resp.raise_for_status()
            body: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise UpstreamError(
                IntegrationsError.WECHAT_UNAVAILABLE, "WeChat did not answer"
            ) from exc
        return body

    def code_to_session(self, app: WeChatApp, js_code: str) -> MiniSession:
        body = self._call(
            "GET",
            "sns/jscode2session",
            params={
                "appid": app.appid,
                "secret": app.secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
            },
        )
        raise_for(body)
        return MiniSession(
            openid=str(body["openid"]),
            unionid=body.get("unionid"),
            session_key=str(body.get("session_key", "")),
        )

    def access_token(self, app: WeChatApp, *, force_refresh: bool = False) -> str:
        key = (self.base_url, app.appid)
        with token_cache.lock(key):
            if not force_refresh:
                cached = token_cache.get(key)
                if cached is not None:
                    return cached
            body = self._call(
                "POST",
                "cgi-bin/stable_token",
                json={
                    "grant_type": "client_credential",
                    "appid": app.appid,
                    "secret": app.secret,
                    "force_refresh": force_refresh,
                },
            )
            raise_for(body)
            token = str(body["access_token"])
            token_cache.put(key, token, int(body.get("expires_in", 7200)))
            return token

    def phone_number(self, app: WeChatApp, code: str) -> PhoneInfo:
        token = self.access_token(app)
        body = self._phone_number_call(token, code)
        if int(body.get("errcode") or 0) in _TOKEN_INVALID:
            # Revoked or expired early (another server fetched a new one): refresh once.
            token_cache.drop((self.base_url, app.appid), token)
            body = self._phone_number_call(self.access_token(app, force_refresh=True), code)
        raise_for(body)
        info = body["phone_info"]
        return PhoneInfo(
            pure_phone_number=str(info["purePhoneNumber"]),
            country_code=str(info.get("countryCode", "86")),
        )

    def _phone_number_call(self, token: str, code: str) -> dict[str, Any]:
        return self._call(
            "POST",
            "wxa/business/getuserphonenumber",
            params={"access_token": token},
            json={"code": code},
        )

    def oauth_user(self, app: WeChatApp, code: str) -> OAuthUser:
        """Web-page (official account) or mobile-app OAuth: the code -> the user."""
        body = self._call(
            "GET",
            "sns/oauth2/access_token",
            params={
                "appid": app.appid,
                "secret": app.secret,
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        raise_for(body)
        openid = str(body["openid"])
        unionid = body.get("unionid")
        nickname = None
        if "snsapi_userinfo" in str(body.get("scope", "")):
            info = self._call(
                "GET",
                "sns/userinfo",
                params={"access_token": str(body["access_token"]), "openid": openid},
            )
            raise_for(info)
            unionid = info.get("unionid") or unionid
            nickname = info.get("nickname")
        return OAuthUser(openid=openid, unionid=unionid, nickname=nickname)

    def send_subscribe_message(
        self,
        app: WeChatApp,
        *,
        touser: str,
        template_id: str,
        data: dict[str, str],
        page: str = "",
    ) -> None:
        """Send a subscribe message: ``data`` maps the template's keys (``thing1``...) to
        their values, sent as ``{key: {"value": ...}}``."""
        body: dict[str, Any] = {
            "touser": touser,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
            "miniprogram_state": "formal",
            "lang": "zh_CN",
        }
        if page:
            body["page"] = page
        self._message_call(app, "cgi-bin/message/subscribe/send", body)

    def send_template_message(
        self,
        app: WeChatApp,
        *,
        touser: str,
        template_id: str,
        data: dict[str, str],
        client_msg_id: str,
        miniprogram: tuple[str, str] | None = None,
    ) -> None:
        """Send an official account's template message (``POST /cgi-bin/message/template/
        send``) to a follower: ``data`` as for :meth:`send_subscribe_message`; tapping it
        opens ``miniprogram`` (appid, page) when given. WeChat sends one message per
        ``client_msg_id`` and user, so a retry after a lost answer does not send twice."""
        body: dict[str, Any] = {
            "touser": touser,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
            "client_msg_id": client_msg_id,
        }
        if miniprogram is not None:
            body["miniprogram"] = {"appid": miniprogram[0], "pagepath": miniprogram[1]}
        self._message_call(app, "cgi-bin/message/template/send", body)

    def _message_call(self, app: WeChatApp, path: str, body: dict[str, Any]) -> None:
        token = self.access_token(app)
        answer = self._call("POST", path, params={"access_token": token}, json=body)
        if int(answer.get("errcode") or 0) in _TOKEN_INVALID:
            token_cache.drop((self.base_url, app.appid), token)
            token = self.access_token(app, force_refresh=True)
            answer = self._call("POST", path, params={"access_token": token}, json=body)
        raise_for(answer)

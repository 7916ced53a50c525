"""Sign-in with a WeChat official account (OAuth), or its simulator outside production.

A union's own official account links its menu to ``/h5/login/wechat?appid=<its appid>``;
without ``appid`` the deployment's official account is used. The appid travels with the
state cookie to the callback, so the code is exchanged with the app that issued it."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.accounts import wechat, wechat_apps
from gonghui.accounts.models import WeChatAppKind
from gonghui.db import unit_of_work
from gonghui.deployment import dev_conveniences_allowed
from gonghui.errors import DomainError
from gonghui.h5.sign_in import render_login
from gonghui.integrations.wechat import WeChatApp
from gonghui.settings import get_settings
from gonghui.web.errors import error_key
from gonghui.web.session import check_same_origin, set_sign_in_cookies
from gonghui.web.templating import render

router = APIRouter()


WECHAT_STATE_COOKIE = "gh_wx_state"


WECHAT_AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"


def _wechat_simulated() -> bool:
    return dev_conveniences_allowed() and not get_settings().wechat_base_url


def _official_app(appid: str) -> WeChatApp:
    with unit_of_work(read_only=True) as session:
        return wechat_apps.resolve(session, WeChatAppKind.OFFICIAL, appid or None)


@router.get("/login/wechat")
def wechat_start(request: Request, appid: str = "") -> Response:
    """Official-account OAuth: to WeChat's consent page (the simulator's outside
    production), which comes back to the callback with a code."""
    settings = get_settings()
    try:
        app = _official_app(appid[:32])
    except DomainError as exc:
        return render_login(request, error=error_key(exc))
    state = secrets.token_urlsafe(16)
    if _wechat_simulated():
        target = "/h5/login/wechat/sim?" + urlencode({"state": state})
    else:
        callback = settings.resolved_public_base_url + "/h5/login/wechat/callback"
        query = urlencode(
            {
                "appid": app.appid,
                "redirect_uri": callback,
                "response_type": "code",
                "scope": "snsapi_userinfo",
                "state": state,
            }
        )
        target = f"{WECHAT_AUTHORIZE}?{query}#wechat_redirect"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        WECHAT_STATE_COOKIE,
        f"{state}.{app.appid}",
        max_age=600,
        httponly=True,
        samesite="lax",
        secure=settings.resolved_public_base_url.startswith("https"),
        path="/h5/login/wechat",
    )
    return response


@router.get("/login/wechat/sim", response_class=HTMLResponse)
def wechat_simulated_consent(request: Request, state: str = "") -> Response:
    if not _wechat_simulated():
        return RedirectResponse("/h5/login", status_code=303)
    return render(request, "h5/wechat_sim.html", {"state": state})


@router.post("/login/wechat/sim")
def wechat_simulated_allow(
    request: Request,
    nickname: Annotated[str, Form(min_length=1, max_length=32)],
    state: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """The development stand-in for the user tapping "allow" in WeChat: the simulator mints
    the OAuth code that WeChat would put on the redirect."""
    check_same_origin(request)
    if not _wechat_simulated():
        return RedirectResponse("/h5/login", status_code=303)
    settings = get_settings()
    _, _, appid = (request.cookies.get(WECHAT_STATE_COOKIE) or "").partition(".")
    minted = httpx.post(
        settings.resolved_wechat_base_url + "/_control/login-code",
        json={"appid": appid or settings.wechat_oa_appid, "person": nickname, "nickname": nickname},
        timeout=10,
    )
    minted.raise_for_status()
    query = urlencode({"code": minted.json()["code"], "state": state})
    return RedirectResponse(f"/h5/login/wechat/callback?{query}", status_code=303)


@router.get("/login/wechat/callback", response_class=HTMLResponse)
def wechat_callback(request: Request, code: str = "", state: str = "") -> Response:
    expected, _, appid = (request.cookies.get(WECHAT_STATE_COOKIE) or "").partition(".")
    if not code or not expected or not secrets.compare_digest(state, expected):
        return render_login(request, error="h5.wechat_state")
    try:
        with unit_of_work() as session:
            pair = wechat.sign_in_with_official_account(
                session,
                code=code,
                channel="h5",
                appid=appid or None,
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
    except DomainError as exc:
        return render_login(request, error=error_key(exc))
    response = RedirectResponse("/h5/", status_code=303)
    response.delete_cookie(WECHAT_STATE_COOKIE, path="/h5/login/wechat")
    set_sign_in_cookies(response, pair)
    return response

"""Sign-in for server-rendered pages: the API's own tokens, carried in HttpOnly cookies.

The access token and the rotating refresh token live in ``SameSite=Lax`` HttpOnly cookies;
an expired access token is renewed from the refresh token transparently (with the same
reuse detection as the API). Unsafe requests must come from our own origin and, once signed
in, carry the CSRF token derived from the sign-in session.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gonghui.accounts import principal as principals
from gonghui.accounts import tokens
from gonghui.accounts.principal import Principal
from gonghui.accounts.tokens import TokenPair
from gonghui.db import unit_of_work
from gonghui.errors import DomainError, PermissionDenied, Unauthenticated
from gonghui.keys import get_keys
from gonghui.settings import get_settings

ACCESS_COOKIE = "gh_at"
REFRESH_COOKIE = "gh_rt"


class LoginRequired(Exception):
    """A page needs a signed-in user; the app answers with a redirect to ``login_url``."""

    def __init__(self, login_url: str) -> None:
        super().__init__(login_url)
        self.login_url = login_url


@dataclass(frozen=True)
class PageUser:
    principal: Principal
    csrf_token: str


def csrf_token_for(session_id: str) -> str:
    return hmac.new(
        get_keys().token_signing_key, b"csrf:" + session_id.encode(), hashlib.sha256
    ).hexdigest()


def set_sign_in_cookies(response: Response, pair: TokenPair) -> None:
    secure = get_settings().resolved_public_base_url.startswith("https")
    for name, value, max_age in (
        (ACCESS_COOKIE, pair.access_token, get_settings().refresh_token_ttl_s),
        (REFRESH_COOKIE, pair.refresh_token, get_settings().refresh_token_ttl_s),
    ):
        response.set_cookie(
            name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/"
        )


def clear_sign_in_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path="/")


# The request state's key for a renewal's outcome: the new pair, or None (cookies cleared).
_RENEWED = "gonghui_sign_in_renewed"


def current_page_user(request: Request) -> PageUser | None:
    """The signed-in user of this page request, renewing an expired access token. The
    renewed cookies go out with whatever the page answers (:class:`RenewedSignInCookies`):
    a page that returns its own response would otherwise drop them, and the browser's
    next request would present the spent refresh token and end the sign-in."""
    access = request.cookies.get(ACCESS_COOKIE)
    if access:
        try:
            with unit_of_work(read_only=True) as session:
                found = principals.resolve(session, access)
            return PageUser(found, csrf_token_for(found.session_id))
        except Unauthenticated:
            pass
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        return None
    try:
        with unit_of_work() as session:
            pair = tokens.rotate(session, refresh_token=refresh)
        with unit_of_work(read_only=True) as session:
            found = principals.resolve(session, pair.access_token)
    except DomainError:
        setattr(request.state, _RENEWED, None)
        return None
    setattr(request.state, _RENEWED, pair)
    return PageUser(found, csrf_token_for(found.session_id))


class RenewedSignInCookies:
    """ASGI middleware: a page request whose sign-in was renewed (or ended) answers with
    the new cookies (or their removal), whatever response its handler built."""

    _PAGES = ("/h5", "/console", "/cashier")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._PAGES):
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            state = scope.get("state") or {}
            if message["type"] == "http.response.start" and _RENEWED in state:
                cookies = Response()
                pair = state[_RENEWED]
                if pair is None:
                    clear_sign_in_cookies(cookies)
                else:
                    set_sign_in_cookies(cookies, pair)
                headers = MutableHeaders(scope=message)
                for value in cookies.headers.getlist("set-cookie"):
                    headers.append("set-cookie", value)
            await send(message)

        await self.app(scope, receive, sending)


def check_same_origin(request: Request) -> None:
    """Refuse a cross-site form post (OWASP: verify Origin, else Referer)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return  # non-browser clients; the CSRF token still applies when signed in
    if urlsplit(source).netloc != request.headers.get("host"):
        raise PermissionDenied("web.cross_origin", "cross-site request refused")


def check_csrf(request: Request, user: PageUser, submitted: str | None) -> None:
    check_same_origin(request)
    token = submitted or request.headers.get("x-csrf-token") or ""
    if not hmac.compare_digest(token, user.csrf_token):
        raise PermissionDenied("web.csrf", "the form has expired; reload the page")


def sign_out(request: Request, user: PageUser, csrf: str, *, then: str) -> Response:
    """End the page user's sign-in (its API session too), clear the cookies, go to ``then``."""
    from fastapi.responses import RedirectResponse

    check_csrf(request, user, csrf)
    with unit_of_work() as session:
        tokens.revoke_session(session, session_id=user.principal.session_id, reason="logout")
    response = RedirectResponse(then, status_code=303)
    clear_sign_in_cookies(response)
    return response

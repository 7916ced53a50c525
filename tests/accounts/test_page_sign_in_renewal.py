"""A page's sign-in outlives its access token: the renewed cookies reach the browser."""

from __future__ import annotations

from datetime import timedelta

import httpx

from gonghui import clock
from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.settings import get_settings
from gonghui.web.session import ACCESS_COOKIE, REFRESH_COOKIE


def test_an_h5_member_stays_signed_in_across_access_token_renewals(server: str) -> None:
    """Before, a page returned its own response and the renewal's cookies were dropped:
    the browser kept the spent refresh token, the next renewal read as a stolen token,
    and the member was signed out a quarter of an hour after signing in."""
    with unit_of_work() as session:
        user = create_user(session, display_name="李雷")
        pair = start_session(session, user=user, channel="h5")
    ttl = timedelta(seconds=get_settings().access_token_ttl_s + 60)
    with httpx.Client(base_url=server, follow_redirects=False) as browser:
        browser.cookies.set(ACCESS_COOKIE, pair.access_token, domain="127.0.0.1")
        browser.cookies.set(REFRESH_COOKIE, pair.refresh_token, domain="127.0.0.1")
        for _ in range(3):
            clock.advance(ttl)
            page = browser.get("/h5/verify")
            assert page.status_code == 200, page.headers.get("location")
            renewed = {c.split("=", 1)[0] for c in page.headers.get_list("set-cookie")}
            assert renewed == {ACCESS_COOKIE, REFRESH_COOKIE}
            assert browser.cookies[REFRESH_COOKIE] != pair.refresh_token
        assert browser.get("/h5/verify").status_code == 200

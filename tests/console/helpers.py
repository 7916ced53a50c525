"""Helpers the console tests share: a signed-in console for a staff member."""

from __future__ import annotations

import httpx

from gonghui.web.session import ACCESS_COOKIE
from tests.fixtures import Staff, page_csrf


class Console:
    """A staff member's console, as their browser would hold it: the sign-in cookie, and
    the CSRF token of a page they post from (by default their session's, as the home page
    carries it)."""

    def __init__(self, api: httpx.Client, token: str) -> None:
        self.api = api
        self.cookie = {"Cookie": f"{ACCESS_COOKIE}={token}"}
        self._csrf = ""

    def get(self, path: str) -> httpx.Response:
        return self.api.get(path, headers=self.cookie)

    def post(
        self, path: str, data: dict[str, str] | None = None, *, form_page: str | None = None
    ) -> httpx.Response:
        """Submit a form: with ``form_page``, the one that page serves (its token read
        afresh); else with the session's token."""
        csrf = self._page_csrf(form_page) if form_page is not None else self.csrf
        return self.api.post(path, data={**(data or {}), "csrf": csrf}, headers=self.cookie)

    @property
    def csrf(self) -> str:
        """The session's CSRF token (as every page carries it)."""
        self._csrf = self._csrf or self._page_csrf("/console/")
        return self._csrf

    def _page_csrf(self, path: str) -> str:
        page = self.get(path)
        csrf = page_csrf(page.text)
        assert csrf, page.text[:300]
        return csrf


def console(api: httpx.Client, staff: Staff) -> Console:
    return Console(api, staff.headers["Authorization"].removeprefix("Bearer "))

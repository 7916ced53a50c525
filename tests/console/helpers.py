"""Helpers the console tests share: a signed-in console for a staff member."""

from __future__ import annotations

import httpx

from gonghui.web.session import ACCESS_COOKIE
from tests.fixtures import Staff, page_csrf


class Console:
    """A signed-in console: the staff member's token as the page cookie, and the CSRF
    token of a page."""

    def __init__(self, api: httpx.Client, token: str) -> None:
        self.api = api
        self.cookie = {"Cookie": f"{ACCESS_COOKIE}={token}"}

    def get(self, path: str) -> httpx.Response:
        return self.api.get(path, headers=self.cookie)

    def post(self, path: str, data: dict[str, str], *, form_page: str) -> httpx.Response:
        page = self.get(form_page)
        csrf = page_csrf(page.text)
        assert csrf, page.text[:300]
        return self.api.post(path, data={**data, "csrf": csrf}, headers=self.cookie)


def console(api: httpx.Client, staff: Staff) -> Console:
    return Console(api, staff.headers["Authorization"].removeprefix("Bearer "))

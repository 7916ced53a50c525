"""The open APIs with a token: :class:`OpenClient` (synchronous) and
:class:`AsyncOpenClient`. An expired access token (by its ``expires_in``, or a 401 from the
server) is renewed once per call, with the refresh token (whose rotated successor goes to
``on_refresh``: store it, the old one is spent) or, for a client's own token, with its
client credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any, Self, cast

import httpx

from gonghui_sdk.errors import raise_for_answer
from gonghui_sdk.models import (
    OpenActivityPage,
    OpenMember,
    OpenNewsPage,
    OpenNewsRead,
    OpenWallet,
)
from gonghui_sdk.oauth import AsyncOAuth, OAuth, TokenSet

TokenCallback = Callable[[TokenSet], None]


Params = dict[str, int | str]


def _page_params(before: int | None, limit: int | None) -> Params:
    params = {"before": before, "limit": limit}
    return {k: v for k, v in params.items() if v is not None}


def _news_params(cursor: str | None, limit: int | None) -> Params:
    params: dict[str, int | str | None] = {"cursor": cursor, "limit": limit}
    return {k: v for k, v in params.items() if v is not None}


class _Renewal:
    """When and how a client's tokens are renewed (shared by both clients)."""

    def __init__(
        self, tokens: TokenSet, on_refresh: TokenCallback | None, client_scope: str | None
    ) -> None:
        self.tokens = tokens
        self.on_refresh = on_refresh
        self.client_scope = client_scope

    @property
    def possible(self) -> bool:
        return self.tokens.refresh_token is not None or self.client_scope is not None

    def renewed(self, tokens: TokenSet) -> None:
        if tokens.refresh_token is None and self.tokens.refresh_token is not None:
            tokens = replace(tokens, refresh_token=self.tokens.refresh_token)
        self.tokens = tokens
        if self.on_refresh is not None:
            self.on_refresh(tokens)


class OpenClient:
    """``/open/v1`` for a member's token (from :meth:`OAuth.exchange_code`) or a client's
    own (:meth:`with_client_credentials`)."""

    def __init__(
        self,
        oauth: OAuth,
        tokens: TokenSet,
        *,
        on_refresh: TokenCallback | None = None,
        client_scope: str | None = None,
    ) -> None:
        self.oauth = oauth
        self._renewal = _Renewal(tokens, on_refresh, client_scope)

    @classmethod
    def with_client_credentials(
        cls,
        oauth: OAuth,
        scope: str = "activities:read",
        *,
        on_refresh: TokenCallback | None = None,
    ) -> Self:
        """A confidential client's back end, with a token of its own (renewed when it expires)."""
        return cls(
            oauth, oauth.client_credentials(scope), on_refresh=on_refresh, client_scope=scope
        )

    @property
    def tokens(self) -> TokenSet:
        return self._renewal.tokens

    def _renew(self) -> None:
        renewal = self._renewal
        if renewal.tokens.refresh_token is not None:
            renewal.renewed(self.oauth.refresh(renewal.tokens.refresh_token))
        elif renewal.client_scope is not None:
            renewal.renewed(self.oauth.client_credentials(renewal.client_scope))

    def _send(self, path: str, params: Params | None = None) -> httpx.Response:
        url = self.oauth.discovery.issuer + path
        headers = {"Authorization": f"Bearer {self.tokens.access_token}"}
        return self.oauth.http.get(url, params=params, headers=headers)

    def get(self, path: str, params: Params | None = None) -> Any:
        """GET an open API's ``path``: its JSON, or the error it answers raised."""
        if self.tokens.expired() and self._renewal.possible:
            self._renew()
        answer = self._send(path, params)
        if answer.status_code == 401 and self._renewal.possible:
            self._renew()
            answer = self._send(path, params)
        raise_for_answer(answer)
        return answer.json()

    def me(self) -> OpenMember:
        return cast(OpenMember, self.get("/open/v1/me"))

    def benefits(self) -> OpenWallet:
        """``benefits:read``: the member's points, vouchers (without codes) and prizes."""
        return cast(OpenWallet, self.get("/open/v1/me/benefits"))

    def activities(
        self, *, before: int | None = None, limit: int | None = None
    ) -> OpenActivityPage:
        """``activities:read`` (a client's own token): one page, newest first."""
        return cast(OpenActivityPage, self.get("/open/v1/activities", _page_params(before, limit)))

    def activity_pages(self, *, limit: int | None = None) -> Iterator[OpenActivityPage]:
        """Every page of :meth:`activities`, following ``next_before``."""
        before: int | None = None
        while True:
            page = self.activities(before=before, limit=limit)
            yield page
            before = page["next_before"]
            if before is None:
                return

    def news(self, *, cursor: str | None = None, limit: int | None = None) -> OpenNewsPage:
        """``news:read`` (a client's own token): one page of the published news and
        notices of the client's org and below, newest first."""
        return cast(OpenNewsPage, self.get("/open/v1/news", _news_params(cursor, limit)))

    def news_pages(self, *, limit: int | None = None) -> Iterator[OpenNewsPage]:
        """Every page of :meth:`news`, following ``next_cursor``."""
        cursor: str | None = None
        while True:
            page = self.news(cursor=cursor, limit=limit)
            yield page
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def news_item(self, news_id: int) -> OpenNewsRead:
        """``news:read``: one published item with its sanitised ``body_html``."""
        return cast(OpenNewsRead, self.get(f"/open/v1/news/{int(news_id)}"))


class AsyncOpenClient:
    """:class:`OpenClient` with ``await``, on an :class:`AsyncOAuth`."""

    def __init__(
        self,
        oauth: AsyncOAuth,
        tokens: TokenSet,
        *,
        on_refresh: TokenCallback | None = None,
        client_scope: str | None = None,
    ) -> None:
        self.oauth = oauth
        self._renewal = _Renewal(tokens, on_refresh, client_scope)

    @classmethod
    async def with_client_credentials(
        cls,
        oauth: AsyncOAuth,
        scope: str = "activities:read",
        *,
        on_refresh: TokenCallback | None = None,
    ) -> Self:
        tokens = await oauth.client_credentials(scope)
        return cls(oauth, tokens, on_refresh=on_refresh, client_scope=scope)

    @property
    def tokens(self) -> TokenSet:
        return self._renewal.tokens

    async def _renew(self) -> None:
        renewal = self._renewal
        if renewal.tokens.refresh_token is not None:
            renewal.renewed(await self.oauth.refresh(renewal.tokens.refresh_token))
        elif renewal.client_scope is not None:
            renewal.renewed(await self.oauth.client_credentials(renewal.client_scope))

    async def _send(self, path: str, params: Params | None = None) -> httpx.Response:
        url = self.oauth.discovery.issuer + path
        headers = {"Authorization": f"Bearer {self.tokens.access_token}"}
        return await self.oauth.http.get(url, params=params, headers=headers)

    async def get(self, path: str, params: Params | None = None) -> Any:
        if self.tokens.expired() and self._renewal.possible:
            await self._renew()
        answer = await self._send(path, params)
        if answer.status_code == 401 and self._renewal.possible:
            await self._renew()
            answer = await self._send(path, params)
        raise_for_answer(answer)
        return answer.json()

    async def me(self) -> OpenMember:
        return cast(OpenMember, await self.get("/open/v1/me"))

    async def benefits(self) -> OpenWallet:
        return cast(OpenWallet, await self.get("/open/v1/me/benefits"))

    async def activities(
        self, *, before: int | None = None, limit: int | None = None
    ) -> OpenActivityPage:
        page = await self.get("/open/v1/activities", _page_params(before, limit))
        return cast(OpenActivityPage, page)

    async def activity_pages(self, *, limit: int | None = None) -> AsyncIterator[OpenActivityPage]:
        before: int | None = None
        while True:
            page = await self.activities(before=before, limit=limit)
            yield page
            before = page["next_before"]
            if before is None:
                return

    async def news(self, *, cursor: str | None = None, limit: int | None = None) -> OpenNewsPage:
        page = await self.get("/open/v1/news", _news_params(cursor, limit))
        return cast(OpenNewsPage, page)

    async def news_pages(self, *, limit: int | None = None) -> AsyncIterator[OpenNewsPage]:
        cursor: str | None = None
        while True:
            page = await self.news(cursor=cursor, limit=limit)
            yield page
            cursor = page["next_cursor"]
            if cursor is None:
                return

    async def news_item(self, news_id: int) -> OpenNewsRead:
        return cast(OpenNewsRead, await self.get(f"/open/v1/news/{int(news_id)}"))


__all__ = ["AsyncOpenClient", "OpenClient", "TokenCallback"]

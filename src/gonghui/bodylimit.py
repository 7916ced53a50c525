"""Request body limits: one ceiling for every route, lower limits declared next to routes,
counted while the body streams in.

:class:`BodyLimitMiddleware` refuses a declared ``Content-Length`` above the limit before a
byte of the body is read, and counts the bytes of every body as the application receives
them, so a chunked upload (no ``Content-Length``) stops at the limit instead of filling the
disk or memory. Either way the answer is 413 with ``request.too_large`` in the envelope.

The ceiling is ``GONGHUI_MAX_BODY_BYTES``. A route lowers it with :func:`max_body` on its
endpoint; a JSON body sent to a route that declares nothing may have
``GONGHUI_MAX_JSON_BODY_BYTES``. The route's limit is looked up once per request, when the
application first asks for the body (routing has found the endpoint by then); requests that
send no body pay for one method check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gonghui.errors import envelope
from gonghui.settings import Settings, get_settings

# Where a request's budget lives in the ASGI scope (see :func:`lower`).
_SCOPE_KEY = "gonghui.body_budget"
_ATTRIBUTE = "__gonghui_max_body__"
# Requests whose body no route reads: they skip the bookkeeping (the hot GETs).
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
# Room for the multipart framing (boundaries, part headers, small form fields) around an
# uploaded file.
MULTIPART_FRAMING = 64 * 1024

Limit = int | Callable[[], int]
_F = TypeVar("_F", bound=Callable[..., Any])


class BodyTooLarge(HTTPException):
    """An ``HTTPException`` so that FastAPI's body parsing lets it through unchanged (it
    turns other errors raised while reading a body into 400); rendered by the app's
    handler as ``request.too_large``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def max_body(limit: Limit) -> Callable[[_F], _F]:
    """Declare a route's body limit in bytes, or as a function read per request (a
    setting); it applies below ``GONGHUI_MAX_BODY_BYTES``. Put it under the route
    decorator."""

    def mark(endpoint: _F) -> _F:
        setattr(endpoint, _ATTRIBUTE, limit)
        return endpoint

    return mark


def upload_limit() -> int:
    """The body limit of a route that takes one uploaded file: the file's own limit and
    room for the multipart framing around it."""
    return get_settings().upload_max_bytes + MULTIPART_FRAMING


class _Budget:
    """One request's body: its limit, its declared length, the bytes received so far."""

    __slots__ = ("declared", "headers", "limit", "routed", "seen", "settings")

    def __init__(self, settings: Settings, declared: int | None, headers: Any) -> None:
        self.settings = settings
        self.limit = settings.max_body_bytes
        self.declared = declared
        self.headers = headers
        self.seen = 0
        self.routed = False

    def lower(self, limit: int) -> None:
        self.limit = min(self.limit, limit)
        if self.declared is not None and self.declared > self.limit:
            raise BodyTooLarge(self.limit)

    def route(self, scope: Scope) -> None:
        """Apply the matched route's limit (once, before the first byte is read)."""
        self.routed = True
        declared: Limit | None = getattr(scope.get("endpoint"), _ATTRIBUTE, None)
        if declared is not None:
            self.lower(declared() if callable(declared) else declared)
        elif _is_json(self.headers):
            self.lower(self.settings.max_json_body_bytes)


def _is_json(headers: Any) -> bool:
    for name, value in headers:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return bool(kind == b"application/json" or kind.endswith(b"+json"))
    return False


def lower(scope: Scope, limit: int) -> None:
    """Lower this request's body limit to ``limit`` bytes, for a handler that learns its
    limit from data (an app's own file limit) before it reads the body. A declared
    ``Content-Length`` above it is refused at once; a streamed body stops at it."""
    budget: _Budget | None = scope.get(_SCOPE_KEY)
    if budget is not None:  # None: no body is expected (GET), or no middleware (a test app)
        budget.lower(limit)


def _declared_length(headers: Any) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    """Applies the ceiling and counts every body; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        # The settings of this moment (one cached call), never a copy taken at start-up.
        budget = _Budget(get_settings(), _declared_length(headers), headers)
        if budget.declared is not None and budget.declared > budget.limit:
            await _refuse(send, budget.limit)
            return
        scope[_SCOPE_KEY] = budget

        async def counted() -> Message:
            if not budget.routed:
                budget.route(scope)
            message = await receive()
            if message["type"] == "http.request":
                budget.seen += len(message.get("body", b""))
                if budget.seen > budget.limit:
                    raise BodyTooLarge(budget.limit)
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, limit: int) -> None:
    """413 in the envelope, before the application has seen the request."""
    body = json.dumps(
        envelope("request.too_large", f"the request body is larger than {limit} bytes")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

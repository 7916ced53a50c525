"""Text the database cannot store, refused at the edge with the field named.

PostgreSQL's ``text`` and ``jsonb`` refuse NUL (U+0000), and neither database driver can
encode a lone UTF-16 surrogate (U+D800 to U+DFFF), which JSON's ``"\\ud800"`` escape lets
into a decoded body. Either reached the driver (or an error message echoing the input) as a
500. :func:`refuse_unstorable_text` runs before every route (an app-wide dependency) and
answers 422 for a path parameter, query parameter, JSON body (keys and values, however deep)
or form field holding one, on SQLite too, so that both databases accept the same input.

Headers need no check: the HTTP parsers (httptools, h11) refuse NUL in a header, and a header
decoded as Latin-1 holds no surrogate; nor can a path or query hold a surrogate, as their
percent-decoding replaces bytes that are not UTF-8. A body is inspected only when the route
declares one, which FastAPI has parsed by then (the parsed copy is cached on the request), so
nothing is read that the route would not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

MESSAGE = "text must not hold NUL characters or unpaired UTF-16 surrogates"

Loc = tuple[str | int, ...]


def _unstorable(value: Any, loc: Loc) -> Iterator[Loc]:
    """The location of every string within ``value`` (decoded JSON) that cannot be stored."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _UNSTORABLE.search(key):
                # The key itself cannot be named as it is: the error would not render.
                yield loc
            else:
                yield from _unstorable(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, (*loc, index))


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type")
    return _json_type(content_type) if content_type else False


@lru_cache(maxsize=256)
def _json_type(content_type: str) -> bool:
    """FastAPI's own test for a body it decodes as JSON (kept: it parses the header as a
    MIME message, which costs more than the rest of this module's work on a request)."""
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _body_locations(request: Request) -> list[Loc]:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return []
    if isinstance(route.body_field.field_info, Form):
        found: list[Loc] = []
        for key, item in (await request.form()).multi_items():
            text = (item.filename or "") if isinstance(item, UploadFile) else item
            found.extend(_unstorable(text, ("body", key)))
        return found
    if _is_json(request) and await request.body():
        return list(_unstorable(await request.json(), ("body",)))
    return []


async def refuse_unstorable_text(request: Request) -> None:
    """Answer 422, naming the field, when the request holds text no database can store."""
    # Every request runs this: one with nothing to check (no %00 in its path or query, no
    # body declared) returns after two byte searches and an attribute read.
    locations: list[Loc] = []
    scope = request.scope
    raw_path = scope.get("raw_path")
    if raw_path is None or b"%00" in raw_path or b"\x00" in raw_path:
        for name, value in request.path_params.items():
            locations.extend(_unstorable(value, ("path", name)))
    if b"%00" in scope["query_string"]:  # the only way a NUL gets into a query
        for name, value in request.query_params.multi_items():
            locations.extend(_unstorable(value, ("query", name)))
    route = scope.get("route")
    if isinstance(route, APIRoute) and route.body_field is not None:
        locations.extend(await _body_locations(request))
    if locations:
        raise RequestValidationError(
            [
                {"type": "string_unstorable", "loc": loc, "msg": MESSAGE, "input": None}
                for loc in dict.fromkeys(locations)
            ]
        )

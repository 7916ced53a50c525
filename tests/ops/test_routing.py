"""The route index (gonghui.routing) answers every request as FastAPI's own matching of
every route in turn would: each operation of the API document is reached, and paths or
methods that match nothing get the same 404, 405 and redirects."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gonghui.app import create_app

ODD_REQUESTS = [
    ("GET", "/nope"),
    ("GET", "/"),
    ("GET", "/api/v1/ping/"),  # a trailing slash: redirected, as before
    ("GET", "/api/v1/nope/a/b/c/d/e/f"),
    ("DELETE", "/api/v1/ping"),  # a known path, another method: 405
    ("PUT", "/api/v1/baas/data/items/records"),
    ("GET", "/api/v1/baas/data/items/records/1/nope"),
    ("GET", "/h5"),
    ("GET", "/console"),
    ("GET", "/static/nope.css"),
    ("GET", "/api/v1/orgs/1/nope"),
    # Pages (outside the API document) and the simulators.
    ("GET", "/h5/"),
    ("GET", "/console/"),
    ("GET", "/console/roster"),
    ("GET", "/_sim/sms/outbox"),
    ("GET", "/healthz"),
]
EXPECTED_STATUSES = [404, 404, 307, 404, 405, 405, 404, 307, 307, 404, 404, 303, 303, 303, 422, 200]


def _unindexed() -> FastAPI:
    app = create_app()
    app.router.middleware_stack = app.router.app  # FastAPI's matching, every route in turn
    return app


Answer = tuple[int, Any, str | None]


def _answers(app: FastAPI, requests: list[tuple[str, str]]) -> list[Answer]:
    """Each request's status, body and Allow or Location header, in-process (no lifespan)."""

    async def run() -> list[Answer]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await _answer(client, method, path) for method, path in requests]

    return asyncio.run(run())


async def _answer(client: httpx.AsyncClient, method: str, path: str) -> Answer:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    resp = await client.request(method, path, json=body, follow_redirects=False)
    try:
        content: Any = resp.json()
    except ValueError:
        content = resp.text[:200]
    return resp.status_code, content, resp.headers.get("allow") or resp.headers.get("location")


def _requests(app: FastAPI) -> list[tuple[str, str]]:
    out = []
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        out.extend((method.upper(), concrete) for method in operations)
    return out


def _routing_refusal(answer: Answer) -> bool:
    """The router's own 404 or 405 (no operation answers with these two messages). The
    OAuth endpoints answer in OAuth's format, whose ``error`` is a string."""
    error = answer[1].get("error", {}) if isinstance(answer[1], dict) else {}
    if not isinstance(error, dict):
        return False
    return (error.get("code"), error.get("message")) in (
        ("request.not_found", "Not Found"),
        ("request.method_not_allowed", "Method Not Allowed"),
    )


@pytest.mark.usefixtures("database")
def test_every_operation_is_reached_as_without_the_index() -> None:
    indexed = create_app()
    requests = _requests(indexed)
    assert len(requests) > 100
    fast = _answers(indexed, requests)
    assert [r for r, a in zip(requests, fast, strict=True) if _routing_refusal(a)] == []
    assert fast == _answers(_unindexed(), requests)


@pytest.mark.usefixtures("database")
def test_paths_that_match_nothing_answer_as_without_the_index() -> None:
    fast = _answers(create_app(), ODD_REQUESTS)
    assert [a[0] for a in fast] == EXPECTED_STATUSES
    assert fast == _answers(_unindexed(), ODD_REQUESTS)


@pytest.mark.usefixtures("database")
def test_unknown_path_and_wrong_method_keep_the_error_envelope() -> None:
    missing, wrong = _answers(
        create_app(), [("GET", "/api/v1/no-such-thing"), ("DELETE", "/api/v1/ping")]
    )
    assert missing == (
        404,
        {"error": {"code": "request.not_found", "message": "Not Found", "details": None}},
        None,
    )
    assert wrong[0] == 405
    assert wrong[2] == "GET"
    assert wrong[1]["error"]["code"] == "request.method_not_allowed"

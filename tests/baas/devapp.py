"""An app with a ``scores`` table, made over HTTP by a developer, for function and trigger
tests."""

from __future__ import annotations

import httpx

from tests.baas.conftest import AppHandle, make_table
from tests.fixtures import Staff

SCORES = [
    {"name": "member", "type": "string", "indexed": True},
    {"name": "points", "type": "integer"},
]


def make_app(api: httpx.Client, dev: Staff, org_id: int, name: str) -> AppHandle:
    resp = api.post("/api/v1/baas/apps", json={"org_id": org_id, "name": name}, headers=dev.headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    app = AppHandle(body["id"], body["org_id"], body["client_key"], body["server_key"], dev)
    make_table(api, app, "scores", SCORES, {"read": ["public"], "create": ["public"]})
    return app


def functions_url(app: AppHandle, path: str = "") -> str:
    return f"/api/v1/baas/apps/{app.id}/functions{path}"


def deploy(
    api: httpx.Client, app: AppHandle, name: str, source: str, **extra: object
) -> httpx.Response:
    return api.put(
        functions_url(app, f"/{name}"), json={"source": source, **extra}, headers=app.dev.headers
    )


def invoke(api: httpx.Client, app: AppHandle, name: str, event: object) -> httpx.Response:
    return api.post(functions_url(app, f"/{name}/invoke"), json=event, headers=app.client)

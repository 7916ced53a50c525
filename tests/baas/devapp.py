"""An app with a ``scores`` table, made over HTTP by a developer, for function and trigger
tests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.fixtures import Staff


@dataclass(frozen=True)
class DevApp:
    app_id: int
    client_key: str
    server_key: str
    dev: Staff

    def url(self, path: str = "") -> str:
        return f"/api/v1/baas/apps/{self.app_id}/functions{path}"


def make_app(api: httpx.Client, dev: Staff, org_id: int, name: str) -> DevApp:
    resp = api.post("/api/v1/baas/apps", json={"org_id": org_id, "name": name}, headers=dev.headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    table = {
        "name": "scores",
        "fields": [
            {"name": "member", "type": "string", "indexed": True},
            {"name": "points", "type": "integer"},
        ],
        "permissions": {"read": ["public"], "create": ["public"]},
    }
    resp = api.post(f"/api/v1/baas/apps/{body['id']}/tables", json=table, headers=dev.headers)
    assert resp.status_code == 201, resp.text
    return DevApp(body["id"], body["client_key"], body["server_key"], dev)


def deploy(
    api: httpx.Client, app: DevApp, name: str, source: str, **extra: object
) -> httpx.Response:
    return api.put(app.url(f"/{name}"), json={"source": source, **extra}, headers=app.dev.headers)


def invoke(api: httpx.Client, app: DevApp, name: str, event: object) -> httpx.Response:
    return api.post(
        app.url(f"/{name}/invoke"), json=event, headers={"X-Gonghui-App-Key": app.client_key}
    )

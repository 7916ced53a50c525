"""``baas:<app id>``: a union's app, granted one BaaS app of its subtree by a developer of
its org, reads and writes that app's tables as the app's own server would; no other app, no
other subtree's."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.fixtures import Staff, StaffFactory, Tree
from tests.openplatform.conftest import (
    ClientFactory,
    approve,
    bearer,
    client_token,
)


def _baas_app(api: httpx.Client, developer: Staff, org_id: int, name: str) -> tuple[int, str]:
    """A BaaS app with a ``books`` table no one but its server may read, and two books."""
    made = api.post(
        "/api/v1/baas/apps", json={"org_id": org_id, "name": name}, headers=developer.headers
    )
    assert made.status_code == 201, made.text
    app_id, server_key = made.json()["id"], made.json()["server_key"]
    table = api.post(
        f"/api/v1/baas/apps/{app_id}/tables",
        json={
            "name": "books",
            "fields": [
                {"name": "title", "type": "string", "required": True},
                {"name": "stock", "type": "integer", "default": 0},
            ],
            "permissions": {},
        },
        headers=developer.headers,
    )
    assert table.status_code == 201, table.text
    books = [{"title": f"{name}-一", "stock": 1}, {"title": f"{name}-二", "stock": 5}]
    added = api.post(
        "/api/v1/baas/data/books/records/bulk",
        json={"records": books},
        headers={"X-Gonghui-App-Key": server_key},
    )
    assert added.status_code == 201, added.text
    return app_id, server_key


def test_an_app_reads_one_baas_app_of_its_subtree_once_a_developer_granted_it(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    city_developer: Staff, register_client: ClientFactory,
) -> None:  # fmt: skip
    welfare, _ = _baas_app(api, city_developer, tree.district_a1, "welfare")
    sibling, _ = _baas_app(api, city_developer, tree.city_a, "sibling")
    shenzhen, _ = _baas_app(api, make_staff(tree.city_b, Role.DEVELOPER), tree.city_b, "sz")
    client = register_client(scope=f"activities:read baas:{welfare} baas:{sibling} baas:{shenzhen}")
    scope = f"baas:{welfare}"
    assert client_token(server, client, scope).json()["error"] == "invalid_scope"
    operator = approve(api, make_staff(tree.city_a, Role.OPERATOR), client, scope)
    assert operator.status_code == 403  # no apps.manage
    assert approve(api, city_developer, client, scope).status_code == 204
    # Another city's app is not the client's to be granted.
    elsewhere = approve(api, city_developer, client, f"baas:{shenzhen}")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"]["code"] == "app.not_found"
    assert client_token(server, client, f"baas:{shenzhen}").json()["error"] == "invalid_scope"

    token = client_token(server, client, scope)
    assert token.json()["scope"] == scope
    headers = bearer(token)
    url = f"{server}/open/v1/baas/{welfare}/data/books/records"
    page = httpx.get(url, headers=headers)
    assert page.status_code == 200, page.text
    assert [b["title"] for b in page.json()["items"]] == ["welfare-一", "welfare-二"]
    rich = httpx.get(
        url, params={"where": json.dumps({"stock": {"gt": 2}}), "fields": "title"}, headers=headers
    ).json()["items"]
    assert [b["title"] for b in rich] == ["welfare-二"]
    first = page.json()["items"][0]["id"]
    one = httpx.get(f"{url}/{first}", headers=headers)
    assert one.json()["title"] == "welfare-一"
    missing = httpx.get(f"{url}/999999", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "baas.record_not_found"
    assert (
        httpx.get(f"{server}/open/v1/baas/{welfare}/data/nope/records", headers=headers).status_code
        == 404
    )

    # Another app, granted or not, of its subtree or not: the token does not carry it.
    for other in (sibling, shenzhen):
        refused = httpx.get(f"{server}/open/v1/baas/{other}/data/books/records", headers=headers)
        assert refused.status_code == 403, other
        assert refused.json()["error"]["code"] == "openplatform.insufficient_scope"

    # Bad input, in the one envelope.
    for params in ({"where": "not json"}, {"limit": "0"}):
        bad = httpx.get(url, params=params, headers=headers)
        assert bad.status_code == 422, params
        assert bad.json()["error"]["details"]

    # Writes, as the app's server: under the table's field rules; a delete is audited.
    made = httpx.post(url, json={"title": "welfare-三", "stock": 2}, headers=headers)
    assert made.status_code == 201, made.text
    third = made.json()["id"]
    assert httpx.post(url, json={"stock": 1}, headers=headers).status_code == 422  # no title
    changed = httpx.patch(f"{url}/{third}", json={"increment": {"stock": 3}}, headers=headers)
    assert changed.json()["stock"] == 5
    assert httpx.patch(f"{url}/{third}", json={"bogus": {}}, headers=headers).status_code == 422
    assert httpx.delete(f"{url}/{third}", headers=headers).status_code == 204
    assert httpx.get(f"{url}/{third}", headers=headers).status_code == 404
    with unit_of_work(read_only=True) as session:
        deletes = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action.like("baas.record%delete%"))
        )
    assert deletes == 1
    other_url = f"{server}/open/v1/baas/{shenzhen}/data/books/records"
    assert httpx.post(other_url, json={"title": "x"}, headers=headers).status_code == 403

    # Withdrawn by the developer: the same token reads no more.
    gone = api.delete(
        f"/api/v1/oauth-clients/{client.id}/approvals/{scope}", headers=city_developer.headers
    )
    assert gone.status_code == 204
    assert httpx.get(url, headers=headers).status_code == 403
    assert httpx.post(url, json={"title": "x"}, headers=headers).status_code == 403


def test_a_baas_scope_names_an_app_by_its_id(
    api: httpx.Client, tree: Tree, city_developer: Staff
) -> None:
    for bad in ("baas:", "baas:welfare", "baas:012", "baas:1 baas:x"):
        refused = api.post(
            "/api/v1/oauth-clients",
            json={
                "org_id": tree.city_a,
                "name": "x",
                "kind": "confidential",
                "redirect_uris": ["https://x.example.com/cb"],
                "scope": bad,
            },
            headers=city_developer.headers,
        )
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "openplatform.bad_scope"


def test_the_open_api_document_lists_the_baas_routes(server: str) -> None:
    paths = httpx.get(f"{server}/open/v1/openapi.json").json()["paths"]
    assert "/open/v1/baas/{app_id}/data/{table}/records" in paths
    assert "/open/v1/baas/{app_id}/data/{table}/records/{record_id}" in paths

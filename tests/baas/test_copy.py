"""App copy: every configuration item, zero rows, new keys; templates and diffs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.baas.models import DataTable
from gonghui.baas.tables import info as infos
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.baas.conftest import AppHandle, make_table, signed_in_user
from tests.fixtures import Tree

DATA = "/api/v1/baas/data"


@pytest.fixture
def configured(api: httpx.Client, app: AppHandle) -> AppHandle:
    h = app.dev.headers
    api.patch(
        f"/api/v1/baas/apps/{app.id}",
        json={"settings": {"theme": "red", "limits": {"daily": 3}, "wechat_secret": "s3cr3t"}},
        headers=h,
    )
    make_table(
        api,
        app,
        "authors",
        [{"name": "name", "type": "string", "required": True, "unique": True}],
        {"read": ["public"], "create": ["staff:developer"]},
    )
    make_table(
        api,
        app,
        "books",
        [
            {"name": "title", "type": "string", "rules": {"max_length": 50}, "indexed": True},
            {"name": "stock", "type": "integer", "default": 3, "rules": {"min": 0}},
            {"name": "author", "type": "reference", "ref": "authors"},
            {"name": "sequel", "type": "reference", "ref": "books"},
            {"name": "level", "type": "string", "rules": {"enum": ["a", "b"]}},
        ],
        {"read": ["members"], "update": ["creator"], "delete": ["staff:admin"]},
    )
    resp = api.post(f"{DATA}/authors/records", json={"name": "Lu Xun"}, headers=app.server)
    assert resp.status_code == 201
    books = [{"title": f"b{i}", "author": 1} for i in range(5)]
    resp = api.post(f"{DATA}/books/records/bulk", json={"records": books}, headers=app.server)
    assert resp.status_code == 201
    return app


def _template(api: httpx.Client, app: AppHandle, app_id: int) -> dict[str, Any]:
    resp = api.get(f"/api/v1/baas/apps/{app_id}/template", headers=app.dev.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _row_counts(app_id: int) -> dict[str, int]:
    counts = {}
    with unit_of_work(read_only=True) as session:
        for name in ("authors", "books"):
            info = infos.load(session, app_id=app_id, name=name)
            counts[name] = session.scalar(select(func.count()).select_from(info.sql))
    return counts


def test_copy_to_a_child_org_has_every_config_item_no_rows_and_new_keys(
    api: httpx.Client, tree: Tree, configured: AppHandle
) -> None:
    app = configured
    resp = api.post(
        f"/api/v1/baas/apps/{app.id}/copy",
        json={"org_id": tree.grassroots_a1x, "name": "welfare copy"},
        headers=app.dev.headers,
    )
    assert resp.status_code == 201, resp.text
    copy = resp.json()
    assert copy["org_id"] == tree.grassroots_a1x
    assert {copy["client_key"], copy["server_key"]}.isdisjoint({app.client_key, app.server_key})

    source, copied = _template(api, app, app.id), _template(api, app, copy["id"])
    assert copied["app"].pop("name") == "welfare copy"
    assert source["app"].pop("name") == "welfare"
    assert copied == source
    assert source["app"]["settings"] == {"theme": "red", "limits": {"daily": 3}}
    assert [t["name"] for t in source["tables"]] == ["authors", "books"]
    assert len(source["tables"][1]["fields"]) == 5
    assert source["functions"] == source["triggers"] == source["activities"] == []

    assert _row_counts(app.id) == {"authors": 1, "books": 5}
    assert _row_counts(copy["id"]) == {"authors": 0, "books": 0}
    # The copy's keys open the copy's (empty) tables; the source's keys still the source's.
    new = {"X-Gonghui-App-Key": copy["server_key"]}
    assert api.get(f"{DATA}/books/records", headers=new).json()["items"] == []
    assert len(api.get(f"{DATA}/books/records", headers=app.server).json()["items"]) == 5
    # The copied schema works: unique and references hold in the copy.
    assert api.post(f"{DATA}/authors/records", json={"name": "x"}, headers=new).status_code == 201
    assert api.post(f"{DATA}/authors/records", json={"name": "x"}, headers=new).status_code == 409
    resp = api.post(f"{DATA}/books/records", json={"title": "t", "author": 2}, headers=new)
    assert resp.status_code == 422


def test_copy_outside_the_source_subtree_is_refused(
    api: httpx.Client, tree: Tree, configured: AppHandle
) -> None:
    for org in (tree.city_a, tree.grassroots_b1):
        resp = api.post(
            f"/api/v1/baas/apps/{configured.id}/copy",
            json={"org_id": org, "name": "elsewhere"},
            headers=configured.dev.headers,
        )
        assert resp.status_code == 404
    assert len(api.get("/api/v1/baas/apps", headers=configured.dev.headers).json()) == 1
    foreign = signed_in_user(tree.city_b, Role.DEVELOPER)
    resp = api.post(
        f"/api/v1/baas/apps/{configured.id}/copy",
        json={"org_id": tree.grassroots_b1, "name": "stolen"},
        headers=foreign.headers,
    )
    assert resp.status_code == 404


def test_export_then_import_recreates_the_configuration(
    api: httpx.Client, tree: Tree, configured: AppHandle
) -> None:
    template = _template(api, configured, configured.id)
    dev_b = signed_in_user(tree.city_b, Role.DEVELOPER)
    resp = api.post(
        "/api/v1/baas/apps/import",
        json={"org_id": tree.grassroots_b1, "name": "imported", "template": template},
        headers=dev_b.headers,
    )
    assert resp.status_code == 201, resp.text
    imported = resp.json()["id"]
    again = api.get(f"/api/v1/baas/apps/{imported}/template", headers=dev_b.headers).json()
    assert again["app"].pop("name") == "imported"
    template["app"].pop("name")
    assert again == template
    assert _row_counts(imported) == {"authors": 0, "books": 0}


@pytest.mark.parametrize(
    "template",
    [
        {"format": "other", "version": 1},
        {"format": "gonghui.app-template", "version": 99},
        {"format": "gonghui.app-template", "version": 1, "tables": [{"fields": []}]},
        {"format": "gonghui.app-template", "version": 1, "tables": "x"},
    ],
)
def test_bad_templates_are_refused_and_create_nothing(
    api: httpx.Client, tree: Tree, app: AppHandle, template: dict[str, Any]
) -> None:
    resp = api.post(
        "/api/v1/baas/apps/import",
        json={"org_id": tree.city_a, "name": "bad", "template": template},
        headers=app.dev.headers,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "baas.bad_template"
    assert len(api.get("/api/v1/baas/apps", headers=app.dev.headers).json()) == 1


@pytest.mark.parametrize(
    "table_name", ['x"; drop table baas_app; --', "Books", "books\n", "1st", "a" * 64, "id", 7]
)
def test_imported_table_names_meet_the_rule_for_created_tables(
    api: httpx.Client, tree: Tree, app: AppHandle, table_name: object
) -> None:
    template = {
        "format": "gonghui.app-template",
        "version": 1,
        "tables": [{"name": table_name, "fields": [{"name": "title", "type": "string"}]}],
    }
    resp = api.post(
        "/api/v1/baas/apps/import",
        json={"org_id": tree.city_a, "name": "bad", "template": template},
        headers=app.dev.headers,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "baas.bad_name"
    assert [d["field"] for d in resp.json()["error"]["details"]] == ["name"]
    assert len(api.get("/api/v1/baas/apps", headers=app.dev.headers).json()) == 1
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(DataTable)) == 0


def test_diff_shows_what_changed_between_two_apps(
    api: httpx.Client, tree: Tree, configured: AppHandle
) -> None:
    h = configured.dev.headers
    copy = api.post(
        f"/api/v1/baas/apps/{configured.id}/copy",
        json={"org_id": tree.district_a1, "name": "v2"},
        headers=h,
    ).json()
    assert api.get(f"/api/v1/baas/apps/{configured.id}/diff/{copy['id']}", headers=h).json() == []
    base = f"/api/v1/baas/apps/{copy['id']}/tables/books"
    api.patch(f"{base}/fields/stock", json={"rules": {"min": 1}}, headers=h)
    api.post(f"{base}/fields", json={"name": "isbn", "type": "string"}, headers=h)
    api.put(f"{base}/permissions", json={"permissions": {"read": ["public"]}}, headers=h)
    api.patch(f"/api/v1/baas/apps/{copy['id']}", json={"settings": {"theme": "blue"}}, headers=h)
    diff = api.get(f"/api/v1/baas/apps/{configured.id}/diff/{copy['id']}", headers=h).json()
    paths = {d["path"]: (d["from"], d["to"]) for d in diff}
    assert paths["settings.theme"] == ("red", "blue")
    assert paths["settings.limits"] == ({"daily": 3}, None)
    assert paths["tables.books.fields.stock.rules.min"] == (0, 1)
    assert paths["tables.books.fields.isbn"][0] is None
    assert paths["tables.books.permissions.read"] == (["members"], ["public"])
    assert paths["tables.books.permissions.update"] == (["creator"], [])
    assert paths["tables.books.permissions.delete"] == (["staff:admin"], [])
    assert len(paths) == 7

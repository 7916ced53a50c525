"""Tables: typed fields, rules, and schema changes that keep every row's data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select

from gonghui.audit.models import AuditEntry
from gonghui.db import get_engine, unit_of_work
from tests.baas.conftest import AppHandle, make_table

ALL_TYPES = [
    {"name": "title", "type": "string", "required": True, "rules": {"max_length": 20}},
    {"name": "body", "type": "text"},
    {"name": "qty", "type": "integer", "rules": {"min": 0, "max": 1000}},
    {"name": "price", "type": "number"},
    {"name": "active", "type": "boolean", "default": True},
    {"name": "day", "type": "date"},
    {"name": "at", "type": "datetime"},
    {"name": "meta", "type": "json"},
    {"name": "tags", "type": "array"},
    {"name": "code", "type": "string", "unique": True, "rules": {"pattern": "[A-Z]{2}[0-9]+"}},
    {"name": "level", "type": "string", "rules": {"enum": ["gold", "silver"]}},
]


def _rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "title": f"item {i}",
                "body": None if i % 3 == 0 else f"long text {i} 工会",
                "qty": None if i % 5 == 0 else i * 7,
                "price": i / 4,
                "active": i % 2 == 0,
                "day": f"2026-01-{1 + i % 28:02d}",
                "at": f"2026-02-03T04:05:{i % 60:02d}Z",
                "meta": {"i": i, "nested": [i, "x"]},
                "tags": [f"t{i % 3}"],
                "code": f"AB{i}",
                "level": "gold" if i % 2 else "silver",
            }
        )
    return rows


def _all(api: httpx.Client, app: AppHandle, table: str) -> list[dict[str, Any]]:
    resp = api.get(f"/api/v1/baas/data/{table}/records", params={"limit": 1000}, headers=app.server)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def _data(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    skip = {"created_at", "updated_at", "created_by"}
    return [{k: v for k, v in r.items() if k not in skip} for r in records]


def _indexes(sql_table: str) -> set[str]:
    return {ix["name"] for ix in inspect(get_engine()).get_indexes(sql_table) if ix["name"]}


@pytest.fixture
def items(api: httpx.Client, app: AppHandle) -> dict[str, Any]:
    table = make_table(api, app, "items", ALL_TYPES)
    resp = api.post(
        "/api/v1/baas/data/items/records/bulk", json={"records": _rows(40)}, headers=app.server
    )
    assert resp.status_code == 201, resp.text
    return table


def test_every_type_round_trips(api: httpx.Client, app: AppHandle, items: dict[str, Any]) -> None:
    records = _all(api, app, "items")
    assert len(records) == 40
    expected = [{"id": i + 1, **row} for i, row in enumerate(_rows(40))]
    for e in expected:
        e["at"] = e["at"].replace("Z", "Z")
    assert _data(records) == expected


@pytest.mark.parametrize(
    ("record", "field", "code"),
    [
        ({}, "title", "baas.invalid_record"),
        ({"title": "x" * 21}, "title", "baas.invalid_record"),
        ({"title": "a", "qty": -1}, "qty", "baas.invalid_record"),
        ({"title": "a", "qty": "3"}, "qty", "baas.invalid_record"),
        ({"title": "a", "qty": True}, "qty", "baas.invalid_record"),
        ({"title": "a", "price": "NaN"}, "price", "baas.invalid_record"),
        ({"title": "a", "active": 1}, "active", "baas.invalid_record"),
        ({"title": "a", "day": "2026-13-01"}, "day", "baas.invalid_record"),
        ({"title": "a", "at": "2026-01-01T00:00:00"}, "at", "baas.invalid_record"),
        ({"title": "a", "tags": "x"}, "tags", "baas.invalid_record"),
        ({"title": "a", "code": "ab1"}, "code", "baas.invalid_record"),
        ({"title": "a", "level": "bronze"}, "level", "baas.invalid_record"),
        ({"title": "a", "nope": 1}, "nope", "baas.invalid_record"),
        ({"title": "a", "id": 5}, "id", "baas.invalid_record"),
        ({"title": "a", "code": "AB1"}, "code", "baas.unique_violation"),
    ],
)
def test_invalid_records_are_refused_naming_the_field(
    api: httpx.Client,
    app: AppHandle,
    items: dict[str, Any],
    record: dict[str, Any],
    field: str,
    code: str,
) -> None:
    resp = api.post("/api/v1/baas/data/items/records", json=record, headers=app.server)
    assert resp.status_code in (409, 422), resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["details"][0]["field"] == field
    assert len(_all(api, app, "items")) == 40


def test_bulk_create_is_all_or_nothing(
    api: httpx.Client, app: AppHandle, items: dict[str, Any]
) -> None:
    resp = api.post(
        "/api/v1/baas/data/items/records/bulk",
        json={"records": [{"title": "ok"}, {"title": "bad", "qty": -5}]},
        headers=app.server,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "1.qty"
    assert len(_all(api, app, "items")) == 40


def test_schema_changes_keep_every_rows_data(
    api: httpx.Client, app: AppHandle, items: dict[str, Any]
) -> None:
    base = f"/api/v1/baas/apps/{app.id}/tables/items"
    h = app.dev.headers
    expected = _data(_all(api, app, "items"))

    # Add a field with a default: existing rows get it.
    resp = api.post(
        f"{base}/fields", json={"name": "stock", "type": "integer", "default": 5}, headers=h
    )
    assert resp.status_code == 201, resp.text
    for e in expected:
        e["stock"] = 5
    assert _data(_all(api, app, "items")) == expected

    # Rename: same values under the new name.
    resp = api.patch(f"{base}/fields/qty", json={"name": "quantity"}, headers=h)
    assert resp.status_code == 200, resp.text
    expected = [{("quantity" if k == "qty" else k): v for k, v in e.items()} for e in expected]
    assert _data(_all(api, app, "items")) == expected

    # Safe type changes convert every value in place.
    for field, new_type, conv in (
        ("quantity", "number", lambda v: None if v is None else float(v)),
        ("price", "string", lambda v: None if v is None else repr(v)),
        ("active", "integer", lambda v: None if v is None else int(v)),
        ("day", "datetime", lambda v: None if v is None else f"{v}T00:00:00Z"),
        ("tags", "json", lambda v: v),
        ("title", "text", lambda v: v),
    ):
        resp = api.patch(f"{base}/fields/{field}", json={"type": new_type}, headers=h)
        assert resp.status_code == 200, (field, resp.text)
        for e in expected:
            e[field] = conv(e[field])
        assert _data(_all(api, app, "items")) == expected, field

    # An unsafe change is refused and changes nothing.
    resp = api.patch(f"{base}/fields/body", json={"type": "integer"}, headers=h)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "baas.type_change_not_safe"
    assert _data(_all(api, app, "items")) == expected

    # Drop needs confirm=true.
    resp = api.delete(f"{base}/fields/body", headers=h)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "baas.destructive_change_needs_confirm"
    assert _data(_all(api, app, "items")) == expected
    resp = api.delete(f"{base}/fields/body", params={"confirm": "true"}, headers=h)
    assert resp.status_code == 200, resp.text
    assert "body" not in [f["name"] for f in resp.json()["fields"]]
    for e in expected:
        del e["body"]
    assert _data(_all(api, app, "items")) == expected

    table = resp.json()
    assert table["version"] > items["version"]
    with unit_of_work(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.subject_type == "baas_table")
        ).all()
    assert actions.count("baas.table.change_field") == 7
    assert actions.count("baas.table.drop_field") == 1


def test_indexes_are_added_and_dropped(
    api: httpx.Client, app: AppHandle, items: dict[str, Any]
) -> None:
    base = f"/api/v1/baas/apps/{app.id}/tables/items"
    sql_table = f"baas_t_{app.id}_{items['id']}"
    before = _indexes(sql_table)
    resp = api.patch(f"{base}/fields/qty", json={"indexed": True}, headers=app.dev.headers)
    assert resp.status_code == 200
    added = _indexes(sql_table) - before
    assert len(added) == 1
    assert next(iter(added)).startswith("ix_")
    resp = api.patch(f"{base}/fields/qty", json={"indexed": False}, headers=app.dev.headers)
    assert resp.status_code == 200
    assert _indexes(sql_table) == before
    # Unique on a field holding duplicates is refused.
    resp = api.patch(f"{base}/fields/level", json={"unique": True}, headers=app.dev.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "baas.unique_violation"
    assert _indexes(sql_table) == before
    # Dropping the unique field drops its index too.
    resp = api.delete(f"{base}/fields/code", params={"confirm": "true"}, headers=app.dev.headers)
    assert resp.status_code == 200
    assert len(_indexes(sql_table)) == len(before) - 1


def test_a_required_field_added_to_rows_needs_a_default(
    api: httpx.Client, app: AppHandle, items: dict[str, Any]
) -> None:
    base = f"/api/v1/baas/apps/{app.id}/tables/items/fields"
    resp = api.post(
        base, json={"name": "owner", "type": "string", "required": True}, headers=app.dev.headers
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "baas.bad_field"
    assert "owner" not in _all(api, app, "items")[0]
    resp = api.patch(f"{base}/body", json={"required": True}, headers=app.dev.headers)
    assert resp.status_code == 409


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"name": "id", "type": "string"}, "baas.bad_name"),
        ({"name": "Bad Name", "type": "string"}, "request.invalid"),
        ({"name": "x", "type": "colour"}, "request.invalid"),
        ({"name": "x", "type": "json", "indexed": True}, "baas.bad_field"),
        ({"name": "x", "type": "string", "rules": {"min": 1}}, "baas.bad_field"),
        ({"name": "x", "type": "string", "rules": {"pattern": "("}}, "baas.bad_field"),
        ({"name": "x", "type": "integer", "default": "a"}, "baas.invalid_record"),
        ({"name": "x", "type": "reference", "ref": "missing"}, "baas.bad_field"),
        ({"name": "x", "type": "reference"}, "baas.bad_field"),
    ],
)
def test_bad_field_definitions_are_refused(
    api: httpx.Client, app: AppHandle, spec: dict[str, Any], code: str
) -> None:
    resp = api.post(
        f"/api/v1/baas/apps/{app.id}/tables",
        json={"name": "t", "fields": [spec]},
        headers=app.dev.headers,
    )
    assert resp.status_code == 422 if code != "baas.bad_field" else resp.status_code in (409, 422)
    assert resp.json()["error"]["code"] == code
    resp = api.get(f"/api/v1/baas/apps/{app.id}/tables", headers=app.dev.headers)
    assert resp.json() == []


def test_dropping_a_table_needs_confirm(
    api: httpx.Client, app: AppHandle, items: dict[str, Any]
) -> None:
    url = f"/api/v1/baas/apps/{app.id}/tables/items"
    assert api.delete(url, headers=app.dev.headers).status_code == 409
    assert len(_all(api, app, "items")) == 40
    assert api.delete(url, params={"confirm": "true"}, headers=app.dev.headers).status_code == 204
    resp = api.get("/api/v1/baas/data/items/records", headers=app.server)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "baas.table_not_found"
    assert f"baas_t_{app.id}_{items['id']}" not in inspect(get_engine()).get_table_names()


def test_an_unsafe_type_change_is_refused_before_anything_moves(
    api: httpx.Client, app: AppHandle, items: dict[str, Any]
) -> None:
    base = f"/api/v1/baas/apps/{app.id}/tables/items/fields"
    h = app.dev.headers
    assert (
        api.post(base, json={"name": "note", "type": "text", "default": "x"}, headers=h).status_code
        == 201
    )
    before = _data(_all(api, app, "items"))
    resp = api.patch(f"{base}/note", json={"type": "integer", "name": "renamed"}, headers=h)
    assert resp.status_code == 409
    assert resp.json()["error"]["details"][0]["field"] == "note"
    assert _data(_all(api, app, "items")) == before


def test_get_by_id_sees_a_schema_or_permission_change_at_once(
    api: httpx.Client, app: AppHandle
) -> None:
    # Get by id reuses a statement built once per table description: a change must
    # replace it in the very next request, not when a cache expires.
    base = f"/api/v1/baas/apps/{app.id}/tables/notes"
    make_table(api, app, "notes", [{"name": "text", "type": "string"}], {"read": ["public"]})
    made = api.post("/api/v1/baas/data/notes/records", json={"text": "hi"}, headers=app.server)
    assert made.status_code == 201, made.text
    url = f"/api/v1/baas/data/notes/records/{made.json()['id']}"
    assert api.get(url, headers=app.client).json()["text"] == "hi"

    h = app.dev.headers
    resp = api.post(
        f"{base}/fields", json={"name": "stars", "type": "integer", "default": 3}, headers=h
    )
    assert resp.status_code == 201, resp.text
    assert api.get(url, headers=app.client).json()["stars"] == 3

    resp = api.patch(f"{base}/fields/text", json={"name": "body"}, headers=h)
    assert resp.status_code == 200, resp.text
    record = api.get(url, headers=app.client).json()
    assert (record["body"], "text" in record) == ("hi", False)

    resp = api.delete(f"{base}/fields/stars", params={"confirm": "true"}, headers=h)
    assert resp.status_code == 200, resp.text
    assert "stars" not in api.get(url, headers=app.client).json()

    resp = api.put(f"{base}/permissions", json={"permissions": {"read": []}}, headers=h)
    assert resp.status_code == 200, resp.text
    denied = api.get(url, headers=app.client)
    assert denied.status_code == 404
    assert denied.json()["error"]["code"] == "baas.record_not_found"
    assert api.get(url, headers=app.server).json()["body"] == "hi"

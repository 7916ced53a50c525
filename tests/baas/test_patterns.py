"""Field ``pattern`` rules: checked by a linear-time engine, defined only in the syntax it
supports, and never evaluated while the database's write lock is held."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select

from gonghui.baas.models import Field
from gonghui.db import get_engine, unit_of_work
from gonghui.invalidation import forget_all
from gonghui.settings import get_settings
from tests.baas.conftest import AppHandle, make_table

DATA = "/api/v1/baas/data"
# Nested quantifiers: a backtracking engine takes exponential time on a near miss.
CATASTROPHIC = "(a+)+$"
# The longest value a pattern is checked against (longer ones are refused unchecked).
MAX_PATTERN_INPUT = 10_000


def _records(api: httpx.Client, app: AppHandle, table: str) -> list[str]:
    resp = api.get(f"{DATA}/{table}/records", headers=app.server)
    assert resp.status_code == 200, resp.text
    return [item["code"] for item in resp.json()["items"]]


def test_a_catastrophic_pattern_checks_a_long_near_miss_and_refuses_it(
    api: httpx.Client, app: AppHandle
) -> None:
    make_table(
        api, app, "codes", [{"name": "code", "type": "text", "rules": {"pattern": CATASTROPHIC}}]
    )
    near_miss = "a" * (MAX_PATTERN_INPUT - 1) + "b"
    # A backtracking engine would not answer this within the client's timeout (or ever).
    refused = api.post(f"{DATA}/codes/records", json={"code": near_miss}, headers=app.server)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"] == [
        {
            "field": "code",
            "code": "baas.invalid_record",
            "message": "does not match the required pattern",
        }
    ]
    matching = "a" * MAX_PATTERN_INPUT
    created = api.post(f"{DATA}/codes/records", json={"code": matching}, headers=app.server)
    assert created.status_code == 201, created.text
    too_long = api.post(f"{DATA}/codes/records", json={"code": "a" * 50_000}, headers=app.server)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["details"][0]["field"] == "code"
    assert _records(api, app, "codes") == [matching]


@pytest.mark.parametrize(
    "pattern",
    [r"(a)\1", r"(?=a)a", r"(?<!b)a", "(", "x" * 201],
    ids=["backreference", "lookahead", "lookbehind", "unbalanced", "too-long"],
)
def test_a_pattern_the_linear_engine_cannot_run_is_refused_at_definition(
    api: httpx.Client, app: AppHandle, pattern: str
) -> None:
    resp = api.post(
        f"/api/v1/baas/apps/{app.id}/tables",
        json={
            "name": "t",
            "fields": [{"name": "code", "type": "string", "rules": {"pattern": pattern}}],
        },
        headers=app.dev.headers,
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "baas.bad_field"
    assert [(d["field"], d["code"]) for d in error["details"]] == [("code.rules", "baas.bad_field")]
    assert api.get(f"/api/v1/baas/apps/{app.id}/tables", headers=app.dev.headers).json() == []


def test_adding_a_field_with_a_backreference_is_refused(api: httpx.Client, app: AppHandle) -> None:
    make_table(api, app, "codes", [{"name": "code", "type": "string"}])
    resp = api.post(
        f"/api/v1/baas/apps/{app.id}/tables/codes/fields",
        json={"name": "twice", "type": "string", "rules": {"pattern": r"(\w+) \1"}},
        headers=app.dev.headers,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "twice.rules"
    table = api.get(f"/api/v1/baas/apps/{app.id}/tables/codes", headers=app.dev.headers).json()
    assert [f["name"] for f in table["fields"]] == ["code"]


@contextmanager
def _another_writer_holds_the_database() -> Iterator[None]:
    """A write transaction open on SQLite's database lock (BEGIN IMMEDIATE) until the block ends."""
    with get_engine().connect() as connection, connection.begin():
        yield


@pytest.mark.skipif(not get_settings().is_sqlite, reason="SQLite's database-wide write lock")
def test_a_value_refused_by_its_pattern_is_answered_while_another_writer_holds_the_lock(
    api: httpx.Client, app: AppHandle
) -> None:
    make_table(
        api,
        app,
        "codes",
        [{"name": "code", "type": "string", "rules": {"pattern": "[A-Z]{2}[0-9]+"}}],
    )
    created = api.post(f"{DATA}/codes/records", json={"code": "AB1"}, headers=app.server)
    assert created.status_code == 201
    record_id = created.json()["id"]
    forget_all()  # the table's description must be read again, as after a schema change
    with _another_writer_holds_the_database():
        # Were the value checked inside a write transaction, these would wait for the lock
        # (the client gives up long before SQLite's 30 s busy timeout).
        refused_create = api.post(
            f"{DATA}/codes/records", json={"code": "lower1"}, headers=app.server, timeout=10
        )
        refused_update = api.patch(
            f"{DATA}/codes/records/{record_id}",
            json={"set": {"code": "lower2"}},
            headers=app.server,
            timeout=10,
        )
        refused_import = api.post(
            f"/api/v1/baas/apps/{app.id}/tables/codes/import",
            content=b"code\nCD2\nlower3\n",
            headers=app.dev.headers,
            timeout=10,
        )
    assert refused_create.status_code == 422, refused_create.text
    assert refused_update.status_code == 422, refused_update.text
    assert refused_import.status_code == 422, refused_import.text
    assert refused_import.json()["error"]["details"][0]["field"] == "1.code"
    for refused in (refused_create, refused_update, refused_import):
        assert refused.json()["error"]["details"][0]["message"] == (
            "does not match the required pattern"
        )
    assert _records(api, app, "codes") == ["AB1"]


def test_a_pattern_stored_before_the_linear_engine_refuses_values_instead_of_backtracking(
    api: httpx.Client, app: AppHandle
) -> None:
    make_table(
        api, app, "codes", [{"name": "code", "type": "string", "rules": {"pattern": "[a-z]+"}}]
    )
    with unit_of_work() as session:
        field = session.scalars(select(Field).where(Field.name == "code")).one()
        field.rules = {"pattern": r"(a+)\1"}  # written by an older release
    forget_all()
    resp = api.post(f"{DATA}/codes/records", json={"code": "aa"}, headers=app.server)
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["message"] == (
        "has a pattern rule that is no longer supported"
    )
    assert _records(api, app, "codes") == []

"""Table data import and export (CSV, JSON): round trips, all-or-nothing imports."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui.audit.models import AuditEntry
from gonghui.baas import dataio
from gonghui.db import unit_of_work
from gonghui.tenancy import SYSTEM
from tests.baas.conftest import AppHandle, make_table

FIELDS = [
    {"name": "name", "type": "string", "required": True},
    {"name": "qty", "type": "integer", "rules": {"min": 0}},
    {"name": "price", "type": "number"},
    {"name": "ok", "type": "boolean"},
    {"name": "day", "type": "date"},
    {"name": "at", "type": "datetime"},
    {"name": "tags", "type": "array"},
    {"name": "meta", "type": "json"},
]
ROWS = [
    {
        "name": f'名字 {i}, "quoted"',
        "qty": i,
        "price": i * 1.5,
        "ok": i % 2 == 0,
        "day": "2026-03-04",
        "at": "2026-03-04T05:06:07Z",
        "tags": ["a", i],
        "meta": {"k": [i, None]},
    }
    for i in range(7)
] + [{"name": "empty"}]


def _data(api: httpx.Client, app: AppHandle, table: str) -> list[dict[str, Any]]:
    items = api.get(
        f"/api/v1/baas/data/{table}/records", params={"limit": 1000}, headers=app.server
    ).json()["items"]
    skip = {"id", "created_at", "updated_at", "created_by"}
    return [{k: v for k, v in r.items() if k not in skip} for r in items]


@pytest.fixture
def source(api: httpx.Client, app: AppHandle) -> AppHandle:
    make_table(api, app, "goods", FIELDS)
    make_table(api, app, "goods_copy", FIELDS)
    resp = api.post(
        "/api/v1/baas/data/goods/records/bulk", json={"records": ROWS}, headers=app.server
    )
    assert resp.status_code == 201
    return app


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trips(api: httpx.Client, source: AppHandle, fmt: str) -> None:
    base = f"/api/v1/baas/apps/{source.id}/tables"
    h = source.dev.headers
    exported = api.get(f"{base}/goods/export", params={"format": fmt}, headers=h)
    assert exported.status_code == 200
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == len(ROWS)
        assert rows[0]["tags"] == '["a", 0]'
    else:
        assert len(json.loads(exported.text)) == len(ROWS)
    resp = api.post(
        f"{base}/goods_copy/import",
        params={"format": fmt},
        content=exported.content,
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"imported": len(ROWS)}
    expected = _data(api, source, "goods")
    assert _data(api, source, "goods_copy") == expected
    assert expected[-1] == {f["name"]: None for f in FIELDS} | {"name": "empty"}


@pytest.mark.parametrize(
    ("body", "fmt", "field"),
    [
        ("name,qty\na,1\nb,-1\n", "csv", "1.qty"),
        ("name,qty\na,1\nb,x\n", "csv", "1.qty"),
        ("name,colour\na,red\n", "csv", "colour"),
        ('[{"name": "a"}, {"qty": 1}]', "json", "1.name"),
    ],
)
def test_a_bad_row_imports_nothing_and_is_named(
    api: httpx.Client, source: AppHandle, body: str, fmt: str, field: str
) -> None:
    resp = api.post(
        f"/api/v1/baas/apps/{source.id}/tables/goods_copy/import",
        params={"format": fmt},
        content=body.encode(),
        headers=source.dev.headers,
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"] == field
    assert _data(api, source, "goods_copy") == []


def test_import_reports_progress_in_batches(api: httpx.Client, source: AppHandle) -> None:
    seen: list[int] = []
    data = json.dumps([{"name": str(i)} for i in range(2500)])
    with unit_of_work() as session:
        count = dataio.import_rows(
            session,
            actor=SYSTEM,
            app_id=source.id,
            table="goods_copy",
            fmt=dataio.DataFormat.JSON,
            data=data,
            progress=seen.append,
        )
    assert count == 2500
    assert seen == [1000, 2000, 2500]
    counted = api.get(
        "/api/v1/baas/data/goods_copy/records",
        params={"count": "true", "limit": 1},
        headers=source.server,
    )
    assert counted.json()["count"] == 2500


def test_cli_exports_and_imports_with_progress(
    api: httpx.Client, source: AppHandle, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from gonghui.cli import app as cli

    out = tmp_path / "goods.json"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["baas", "export-table", str(source.id), "goods", "--out", str(out), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli, ["baas", "import-table", str(source.id), "goods_copy", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert f"imported {len(ROWS)} rows" in result.output
    assert _data(api, source, "goods_copy") == _data(api, source, "goods")


def test_exported_text_never_runs_as_a_spreadsheet_formula(
    api: httpx.Client, app: AppHandle
) -> None:
    make_table(api, app, "people", FIELDS[:3])
    make_table(api, app, "people_copy", FIELDS[:3])
    names = ['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(A1)", "\tx", "plain"]
    records = [{"name": n, "qty": i, "price": -1.5} for i, n in enumerate(names)]
    resp = api.post(
        "/api/v1/baas/data/people/records/bulk", json={"records": records}, headers=app.server
    )
    assert resp.status_code == 201, resp.text
    base = f"/api/v1/baas/apps/{app.id}/tables"
    exported = api.get(f"{base}/people/export", params={"format": "csv"}, headers=app.dev.headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["name"], r["price"]) for r in rows] == [
        ('\'=HYPERLINK("http://evil.example","x")', "-1.5"),
        ("'+1", "-1.5"),
        ("'-2", "-1.5"),
        ("'@SUM(A1)", "-1.5"),
        ("'\tx", "-1.5"),
        ("plain", "-1.5"),
    ]
    imported = api.post(
        f"{base}/people_copy/import",
        params={"format": "csv"},
        content=exported.content,
        headers=app.dev.headers,
    )
    assert imported.status_code == 200, imported.text
    assert [r["name"] for r in _data(api, app, "people_copy")] == names


def _exports_audited() -> list[tuple[int | None, str | None, dict[str, Any] | None]]:
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "baas.table.export")
            .order_by(AuditEntry.id)
        )
        return [(a.actor_user_id, a.subject_type, a.details) for a in rows]


def test_a_developer_who_exports_a_table_over_http_is_in_the_audit_log(
    api: httpx.Client, source: AppHandle
) -> None:
    # A GET, yet its audit row must be committed with the answer.
    exported = api.get(
        f"/api/v1/baas/apps/{source.id}/tables/goods/export",
        params={"format": "json"},
        headers=source.dev.headers,
    )
    assert exported.status_code == 200
    assert len(exported.json()) == len(ROWS)
    assert _exports_audited() == [(source.dev.user_id, "baas_table", {"format": "json"})]


def test_an_export_from_the_command_line_is_in_the_audit_log(
    source: AppHandle, tmp_path: Any
) -> None:
    from typer.testing import CliRunner

    from gonghui.cli import app as cli

    out = tmp_path / "goods.csv"
    result = CliRunner().invoke(
        cli, ["baas", "export-table", str(source.id), "goods", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(ROWS) + 1
    assert _exports_audited() == [(None, "baas_table", {"format": "csv"})]

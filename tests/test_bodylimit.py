"""Request body limits: one ceiling for every route, lower limits per route, counted while
the body streams in, so a chunked upload without Content-Length is held to them too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.baas.triggers.models import Delivery
from gonghui.db import unit_of_work
from gonghui.members.models import ImportJob
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from gonghui.storage import get_store
from tests.baas.conftest import AppHandle
from tests.baas.devapp import make_app
from tests.fixtures import StaffFactory, Tree

BOUNDARY = "gonghui-test-boundary"


def chunked(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """The body as a generator: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def multipart_file(name: str, content: bytes) -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def roster_csv(rows: int) -> bytes:
    lines = ["姓名,身份证号"] + [f"张{i},44010619900101{i:04d}" for i in range(rows)]
    return "\r\n".join(lines).encode()


def import_jobs() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(ImportJob)) or 0)


def stored_roster_uploads() -> list[str]:
    """Everything under the uploads' prefix: on disk (temporary files too), or in the
    bucket when the tests run with S3."""
    root = get_settings().data_dir / "files" / "roster-imports"
    on_disk = sorted(str(p) for p in root.rglob("*")) if root.exists() else []
    return on_disk + list(get_store().keys("roster-imports/"))


def test_a_chunked_roster_upload_without_length_stops_at_the_ceiling(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    monkeypatch.setattr(get_settings(), "max_body_bytes", 64 * 1024)
    body = multipart_file("r.csv", roster_csv(4000))
    assert len(body) > 64 * 1024
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/roster/imports",
        content=chunked(body),
        headers={
            **operator.headers,
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413
    assert resp.json() == {
        "error": {
            "code": "request.too_large",
            "message": "the request body is larger than 65536 bytes",
            "details": None,
        }
    }
    assert import_jobs() == 0
    assert stored_roster_uploads() == []


def test_a_declared_length_over_the_ceiling_is_refused_before_the_body_is_read(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    monkeypatch.setattr(get_settings(), "max_body_bytes", 64 * 1024)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/roster/imports",
        files={"file": ("r.csv", roster_csv(4000), "text/csv")},
        headers=operator.headers,
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "request.too_large"
    assert len(resp.headers["x-request-id"]) == 32
    assert import_jobs() == 0


def test_a_streamed_json_body_is_held_to_the_json_limit(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    monkeypatch.setattr(get_settings(), "max_json_body_bytes", 32 * 1024)
    question = {"kind": "single", "text": "题" * 20_000, "options": ["A", "B"], "answer": [0]}
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/questions",
        content=chunked(json.dumps(question).encode()),
        headers={**operator.headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "request.too_large"
    listed = api.get(f"/api/v1/orgs/{tree.city_a}/questions", headers=operator.headers)
    assert listed.json() == []


@pytest.fixture
def app_a(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    return make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "收银台")


def deliveries() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Delivery)) or 0)


def test_an_incoming_webhook_finds_its_trigger_first_and_reads_only_a_small_body(
    api: httpx.Client, app_a: AppHandle
) -> None:
    created = api.post(
        f"/api/v1/baas/apps/{app_a.id}/triggers",
        json={"name": "pos", "event": "incoming", "target_kind": "webhook",
              "webhook_url": "https://example.org/hook"},
        headers=app_a.dev.headers,
    ).json()  # fmt: skip
    big = json.dumps({"pad": "x" * 400_000}).encode()
    headers = {"X-Gonghui-Timestamp": "0", "X-Gonghui-Signature": "v1=" + "0" * 64}

    unknown = api.post(
        f"/api/v1/baas/incoming/{created['id'] + 1}", content=chunked(big), headers=headers
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "triggers.not_found"

    streamed = api.post(
        f"/api/v1/baas/incoming/{created['id']}", content=chunked(big), headers=headers
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "request.too_large"
    declared = api.post(f"/api/v1/baas/incoming/{created['id']}", content=big, headers=headers)
    assert declared.status_code == 413
    assert deliveries() == 0

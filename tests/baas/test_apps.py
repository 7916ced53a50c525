"""Apps: developers of an org's subtree manage them; keys are shown once and rotate."""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import func, select

from gonghui.audit.models import AuditEntry
from gonghui.baas.models import App
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.baas.conftest import AppHandle, make_table
from tests.fixtures import StaffFactory, Tree


def _count_apps() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(App)) or 0)


def test_developer_creates_an_app_and_sees_its_keys_once(api: httpx.Client, app: AppHandle) -> None:
    assert app.client_key.startswith("ghc_")
    assert app.server_key.startswith("ghs_")
    resp = api.get(f"/api/v1/baas/apps/{app.id}", headers=app.dev.headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == "welfare"
    assert body["settings"] == {"theme": "red"}
    assert "client_key" not in body
    assert "server_key" not in body
    with unit_of_work(read_only=True) as session:
        row = session.get(App, app.id)
        assert row is not None
        assert row.client_key_hash == hashlib.sha256(app.client_key.encode()).digest()
        assert row.server_key_hash == hashlib.sha256(app.server_key.encode()).digest()
        audit = session.scalars(
            select(AuditEntry.action).where(AuditEntry.subject_type == "app")
        ).all()
    assert audit == ["baas.app.create"]


def test_staff_without_the_developer_role_or_outside_the_subtree_get_404(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, app: AppHandle
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    dev_b = make_staff(tree.city_b, Role.DEVELOPER)
    for staff in (operator, dev_b):
        for method, path, body in (
            ("GET", f"/api/v1/baas/apps/{app.id}", None),
            ("PATCH", f"/api/v1/baas/apps/{app.id}", {"name": "taken over"}),
            ("POST", f"/api/v1/baas/apps/{app.id}/keys/server/rotate", None),
            ("GET", f"/api/v1/baas/apps/{app.id}/tables", None),
            ("POST", f"/api/v1/baas/apps/{app.id}/tables", {"name": "t", "fields": []}),
        ):
            resp = api.request(method, path, json=body, headers=staff.headers)
            assert resp.status_code == 404, (method, path, resp.text)
            assert resp.json()["error"]["code"] == "app.not_found"
        resp = api.post(
            "/api/v1/baas/apps",
            json={"org_id": tree.city_a, "name": "x"},
            headers=staff.headers,
        )
        assert resp.status_code == 404
        assert api.get("/api/v1/baas/apps", headers=staff.headers).json() == []
    assert _count_apps() == 1
    resp = api.get(f"/api/v1/baas/apps/{app.id}", headers=app.dev.headers)
    assert resp.json()["name"] == "welfare"
    # A developer at the province sees the app of the district below.
    dev_p = make_staff(tree.province, Role.DEVELOPER)
    assert [a["id"] for a in api.get("/api/v1/baas/apps", headers=dev_p.headers).json()] == [app.id]


def test_app_names_are_unique_per_org(api: httpx.Client, tree: Tree, app: AppHandle) -> None:
    resp = api.post(
        "/api/v1/baas/apps",
        json={"org_id": tree.district_a1, "name": "welfare"},
        headers=app.dev.headers,
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "baas.app_name_taken"
    assert _count_apps() == 1


def test_settings_update_is_audited(api: httpx.Client, app: AppHandle) -> None:
    resp = api.patch(
        f"/api/v1/baas/apps/{app.id}",
        json={"settings": {"theme": "blue", "quota": 3}},
        headers=app.dev.headers,
    )
    assert resp.status_code == 200
    assert resp.json()["settings"] == {"theme": "blue", "quota": 3}
    with unit_of_work(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "app")
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["baas.app.create", "baas.app.update"]


def test_rotating_a_key_retires_the_old_one(api: httpx.Client, app: AppHandle) -> None:
    make_table(api, app, "notes", [{"name": "text", "type": "string"}], {"read": ["public"]})
    url = "/api/v1/baas/data/notes/records"
    assert api.get(url, headers=app.client).status_code == 200
    resp = api.post(f"/api/v1/baas/apps/{app.id}/keys/client/rotate", headers=app.dev.headers)
    assert resp.status_code == 200
    new_key = resp.json()["key"]
    assert new_key.startswith("ghc_")
    assert new_key != app.client_key
    old = api.get(url, headers=app.client)
    assert old.status_code == 401
    assert old.json()["error"]["code"] == "baas.app_key_invalid"
    assert api.get(url, headers={"X-Gonghui-App-Key": new_key}).status_code == 200
    # The server key is untouched.
    assert api.get(url, headers=app.server).status_code == 200


def test_app_calls_need_a_key(api: httpx.Client, app: AppHandle) -> None:
    make_table(api, app, "notes", [{"name": "text", "type": "string"}], {"read": ["public"]})
    resp = api.get("/api/v1/baas/data/notes/records")
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "baas.app_key_required"
    resp = api.get("/api/v1/baas/data/notes/records", headers={"X-Gonghui-App-Key": "ghc_nope"})
    assert resp.status_code == 401

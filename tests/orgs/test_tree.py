from __future__ import annotations

import httpx

from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree


def test_admin_creates_district_under_city_and_audit_records_it(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    resp = api.post(
        "/api/v1/orgs",
        headers=admin.headers,
        json={
            "code": "GZ-YX",
            "name": "越秀区总工会",
            "level": "district",
            "parent_id": tree.city_a,
        },
    )
    assert resp.status_code == 201, resp.text
    org = resp.json()
    assert org["path"] == f"/{tree.province}/{tree.city_a}/{org['id']}/"
    assert org["depth"] == 2
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    log = api.get(
        "/api/v1/audit",
        params={"action": "orgs.create", "subject_id": org["id"]},
        headers=auditor.headers,
    ).json()["items"]
    assert len(log) == 1
    assert log[0]["actor_user_id"] == admin.user_id
    assert log[0]["details"]["code"] == "GZ-YX"


def test_level_must_sit_below_parent(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    resp = api.post(
        "/api/v1/orgs",
        headers=admin.headers,
        json={"code": "GZ-C2", "name": "x", "level": "city", "parent_id": tree.city_a},
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "orgs.level_not_below_parent"
    assert resp.json()["error"]["details"][0]["field"] == "level"


def test_duplicate_code_is_a_conflict(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    resp = api.post(
        "/api/v1/orgs",
        headers=admin.headers,
        json={"code": "SZ", "name": "x", "level": "district", "parent_id": tree.city_a},
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "orgs.code_taken"


def test_validation_errors_list_each_field(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    resp = api.post(
        "/api/v1/orgs", headers=admin.headers, json={"code": "bad code!", "level": "galaxy"}
    )
    assert resp.status_code == 422
    body = resp.json()["error"]
    assert body["code"] == "request.invalid"
    fields = {d["field"]: d["code"] for d in body["details"]}
    assert fields == {
        "code": "validation.string_pattern_mismatch",
        "name": "validation.missing",
        "level": "validation.enum",
    }


def test_move_rewrites_the_whole_subtree_and_grants_follow(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    province_admin = make_staff(tree.province, Role.ADMIN)
    resp = api.post(
        f"/api/v1/orgs/{tree.district_a1}/move",
        json={"parent_id": tree.city_b},
        headers=province_admin.headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["path"] == f"/{tree.province}/{tree.city_b}/{tree.district_a1}/"
    leaf = api.get(f"/api/v1/orgs/{tree.grassroots_a1x}", headers=province_admin.headers).json()
    assert leaf["path"] == f"/{tree.province}/{tree.city_b}/{tree.district_a1}/{leaf['id']}/"
    assert leaf["depth"] == 3
    # City A's operator no longer sees the moved district; city B's does.
    op_a = make_staff(tree.city_a, Role.OPERATOR)
    op_b = make_staff(tree.city_b, Role.OPERATOR)
    assert api.get(f"/api/v1/orgs/{tree.grassroots_a1x}", headers=op_a.headers).status_code == 404
    assert api.get(f"/api/v1/orgs/{tree.grassroots_a1x}", headers=op_b.headers).status_code == 200


def test_cannot_move_org_into_its_own_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/move",
        json={"parent_id": tree.grassroots_a1x},
        headers=admin.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "orgs.move_into_own_subtree"


def test_archive_requires_children_archived_first(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    resp = api.post(f"/api/v1/orgs/{tree.district_a1}/archive", headers=admin.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "orgs.has_active_children"
    assert (
        api.post(f"/api/v1/orgs/{tree.grassroots_a1x}/archive", headers=admin.headers).status_code
        == 200
    )
    assert (
        api.post(f"/api/v1/orgs/{tree.district_a1}/archive", headers=admin.headers).status_code
        == 200
    )
    listed = api.get("/api/v1/orgs", headers=admin.headers).json()
    assert [o["code"] for o in listed] == ["GZ"]


def test_role_grant_takes_effect_and_is_audited(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    newcomer = make_staff(None, None)
    resp = api.post(
        f"/api/v1/orgs/{tree.district_a1}/staff",
        headers=admin.headers,
        json={"user_id": newcomer.user_id, "role": "operator"},
    )
    assert resp.status_code == 201
    listed = api.get("/api/v1/orgs", headers=newcomer.headers)
    assert sorted(o["code"] for o in listed.json()) == ["GZ-TH", "GZ-TH-01"]
    auditor = make_staff(tree.province, Role.AUDITOR)
    entries = api.get(
        "/api/v1/audit",
        params={"action": "staff.grant", "subject_id": newcomer.user_id},
        headers=auditor.headers,
    ).json()["items"]
    assert [(e["actor_user_id"], e["details"]["role"]) for e in entries] == [
        (admin.user_id, "operator")
    ]

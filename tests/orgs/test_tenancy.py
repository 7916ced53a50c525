"""The tenancy isolation matrix: staff of one city never see or touch another's data."""

from __future__ import annotations

import httpx
import pytest

from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree


def test_operator_of_city_a_lists_only_city_a_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.get("/api/v1/orgs", headers=op.headers)
    assert resp.status_code == 200
    assert sorted(o["code"] for o in resp.json()) == ["GZ", "GZ-TH", "GZ-TH-01"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/orgs/{b}", None),
        ("PATCH", "/api/v1/orgs/{b}", {"name": "被改名"}),
        ("POST", "/api/v1/orgs/{b}/archive", None),
        ("POST", "/api/v1/orgs/{b}/move", {"parent_id": "{a}"}),
        ("GET", "/api/v1/orgs/{b}/staff", None),
        ("POST", "/api/v1/orgs/{b}/staff", {"user_id": 1, "role": "admin"}),
        (
            "POST",
            "/api/v1/orgs",
            {"code": "SZ-X", "name": "x", "level": "district", "parent_id": "{b}"},
        ),
    ],
)
def test_admin_of_city_a_gets_404_for_anything_of_city_b(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    admin_a = make_staff(tree.city_a, Role.ADMIN)
    ids = {"a": tree.city_a, "b": tree.grassroots_b1}

    def fill(value: object) -> object:
        if isinstance(value, str) and value in ("{a}", "{b}"):
            return ids[value[1]]
        return value

    payload = {k: fill(v) for k, v in body.items()} if body else None
    resp = api.request(method, path.format(**ids), json=payload, headers=admin_a.headers)
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["code"] == "org.not_found"
    # Nothing changed in city B.
    admin_b = make_staff(tree.city_b, Role.ADMIN)
    org_b = api.get(f"/api/v1/orgs/{tree.grassroots_b1}", headers=admin_b.headers).json()
    assert org_b["name"] == "南山科技园工会"
    assert org_b["archived_at"] is None
    assert org_b["parent_id"] == tree.city_b
    children = api.get(
        "/api/v1/orgs", params={"root_id": tree.city_b}, headers=admin_b.headers
    ).json()
    assert [o["code"] for o in children] == ["SZ", "SZ-NS-01"]


def test_unknown_org_and_foreign_org_answer_identically(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    foreign = api.get(f"/api/v1/orgs/{tree.city_b}", headers=op.headers)
    missing = api.get("/api/v1/orgs/999999", headers=op.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["code"] == missing.json()["error"]["code"]


def test_operator_cannot_manage_orgs_even_in_own_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.patch(f"/api/v1/orgs/{tree.district_a1}", json={"name": "x"}, headers=op.headers)
    assert resp.status_code == 404
    admin = make_staff(tree.city_a, Role.ADMIN)
    assert (
        api.get(f"/api/v1/orgs/{tree.district_a1}", headers=admin.headers).json()["name"]
        == "天河区总工会"
    )


def test_role_granted_at_city_applies_to_whole_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    resp = api.patch(
        f"/api/v1/orgs/{tree.grassroots_a1x}",
        json={"name": "天河软件园联合工会"},
        headers=admin.headers,
    )
    assert resp.status_code == 200
    assert resp.json()["name"] == "天河软件园联合工会"


def test_members_without_staff_role_are_refused_staff_endpoints(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    nobody = make_staff(None, None)
    resp = api.get("/api/v1/orgs", headers=nobody.headers)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "accounts.not_staff"

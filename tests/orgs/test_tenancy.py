"""The tenancy isolation matrix: staff of one city never see or touch another's data."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select

from gonghui import db
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org, OrgLevel, Role
from gonghui.tenancy import SYSTEM, path_within, within
from tests.fixtures import StaffFactory, Tree
from tests.members.conftest import id_number


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


# "Within org X's subtree", against a reference over the ids that make up the paths.
ids_of_paths = st.lists(st.integers(1, 120), max_size=5)


def _path(ids: list[int], *, trailing_slash: bool = True) -> str:
    text = "/" + "/".join(str(i) for i in ids)
    return text + "/" if ids and trailing_slash else text


def _within_reference(ids: list[int], ancestor_ids: list[int]) -> bool:
    return ids[: len(ancestor_ids)] == ancestor_ids


@given(ids_of_paths, ids_of_paths, st.booleans())
def test_path_within_holds_exactly_for_the_subtree(
    ids: list[int], ancestor_ids: list[int], slash: bool
) -> None:
    ancestor = _path(ancestor_ids, trailing_slash=slash)
    assert path_within(_path(ids), ancestor) is _within_reference(ids, ancestor_ids)


@given(st.integers(1, 99), st.integers(0, 9), st.booleans())
def test_an_org_never_contains_the_org_whose_id_extends_its_own(
    org_id: int, digit: int, slash: bool
) -> None:
    ancestor = _path([1, org_id], trailing_slash=slash)
    assert path_within(f"/1/{org_id}{digit}/", ancestor) is False
    assert path_within(f"/1/{org_id}{digit}/7/", ancestor) is False
    assert path_within(f"/1/{org_id}/7/", ancestor) is True


@pytest.mark.parametrize("bad", ["", "1/2/", "/1//2/", "/1/%/", "/1/_/", "/a/"])
def test_anything_but_a_path_of_ids_is_refused_not_read_as_a_prefix(bad: str) -> None:
    with pytest.raises(ValueError, match="not an org path"):
        path_within("/1/2/", bad)
    with pytest.raises(ValueError, match="not an org path"):
        within(Org.path, bad)


@settings(max_examples=60)
@given(ids_of_paths, ids_of_paths, st.booleans())
def test_within_in_sql_agrees_with_the_reference_on_this_database(
    ids: list[int], ancestor_ids: list[int], slash: bool
) -> None:
    condition = within(literal(_path(ids)), _path(ancestor_ids, trailing_slash=slash))
    answer = db.read_sync(lambda connection: connection.execute(select(condition)).scalar())
    assert bool(answer) is _within_reference(ids, ancestor_ids)


def test_operator_of_a_city_does_not_see_the_city_whose_id_extends_its_own(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    # City ids 2 and 2x: "/1/2/" must not take in "/1/21/" nor the unions below it.
    with unit_of_work() as session:
        cities = [
            orgs.create_org(
                session,
                actor=SYSTEM,
                code=f"C{n}",
                name=f"第{n}市总工会",
                level=OrgLevel.CITY,
                parent_id=tree.province,
            ).id
            for n in range(30)
        ]
        extended = next(c for c in cities if str(c).startswith(str(tree.city_a)))
        below = orgs.create_org(
            session,
            actor=SYSTEM,
            code="C-X-01",
            name="编号延长的市下的工会",
            level=OrgLevel.GRASSROOTS,
            parent_id=extended,
        ).id
        for org_id, name, first17 in [
            (tree.grassroots_a1x, "王小明", "44010619900101001"),
            (below, "李小红", "44010619900101002"),
        ]:
            members.add_roster_entry(
                session, actor=SYSTEM, org_id=org_id, name=name, id_number=id_number(first17)
            )
    op = make_staff(tree.city_a, Role.OPERATOR)
    listed = api.get("/api/v1/orgs", headers=op.headers).json()
    assert sorted(o["code"] for o in listed) == ["GZ", "GZ-TH", "GZ-TH-01"]
    roster = api.get(f"/api/v1/orgs/{tree.city_a}/roster", headers=op.headers).json()
    assert [(e["name"], e["org_id"]) for e in roster["items"]] == [("王*明", tree.grassroots_a1x)]
    for foreign in (extended, below):
        for path in (f"/api/v1/orgs/{foreign}", f"/api/v1/orgs/{foreign}/roster"):
            refused = api.get(path, headers=op.headers)
            assert refused.status_code == 404, path
            assert refused.json()["error"]["code"] == "org.not_found"

"""The audit log: append-only at the database, queried by auditors within their subtree."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree


def _count() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_database_refuses_to_update_or_delete_audit_rows(tree: Tree) -> None:
    before = _count()
    assert before >= 6  # the tree's org creations
    with pytest.raises(DBAPIError, match="append-only"), unit_of_work() as session:
        session.execute(update(AuditEntry).values(action="tampered"))
    with pytest.raises(DBAPIError, match="append-only"), unit_of_work() as session:
        session.execute(delete(AuditEntry))
    with unit_of_work(read_only=True) as session:
        actions = set(session.scalars(select(AuditEntry.action)))
    assert actions == {"orgs.create"}
    assert _count() == before


def test_auditor_sees_only_entries_of_their_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin_a = make_staff(tree.city_a, Role.ADMIN)
    admin_b = make_staff(tree.city_b, Role.ADMIN)
    api.patch(f"/api/v1/orgs/{tree.district_a1}", json={"name": "A改名"}, headers=admin_a.headers)
    api.patch(f"/api/v1/orgs/{tree.grassroots_b1}", json={"name": "B改名"}, headers=admin_b.headers)
    auditor_a = make_staff(tree.city_a, Role.AUDITOR)
    items = api.get(
        "/api/v1/audit", params={"action": "orgs.rename"}, headers=auditor_a.headers
    ).json()["items"]
    assert [(i["org_id"], i["details"]["to"]) for i in items] == [(tree.district_a1, "A改名")]
    auditor_p = make_staff(tree.province, Role.AUDITOR)
    items = api.get(
        "/api/v1/audit", params={"action": "orgs.rename"}, headers=auditor_p.headers
    ).json()["items"]
    assert sorted(i["details"]["to"] for i in items) == ["A改名", "B改名"]


def test_audit_query_filters_by_actor_and_time_and_pages(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    for i in range(5):
        api.patch(
            f"/api/v1/orgs/{tree.district_a1}", json={"name": f"名{i}"}, headers=admin.headers
        )
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    first = api.get(
        "/api/v1/audit",
        params={"actor_user_id": admin.user_id, "limit": 3},
        headers=auditor.headers,
    ).json()
    assert [i["details"]["to"] for i in first["items"]] == ["名4", "名3", "名2"]
    second = api.get(
        "/api/v1/audit",
        params={"actor_user_id": admin.user_id, "limit": 3, "before_id": first["next_before_id"]},
        headers=auditor.headers,
    ).json()
    # The role grant that created the admin was written by the system, not by the admin.
    assert [i["details"]["to"] for i in second["items"]] == ["名1", "名0"]
    assert second["next_before_id"] is None
    later = api.get(
        "/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=auditor.headers
    ).json()
    assert later["items"] == []


def test_operators_cannot_read_the_audit_log(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.get("/api/v1/audit", headers=op.headers)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "audit.not_auditor"

"""Staff read the roster masked, search it through the blind index, and unmask one field
at a time with a reason that lands in the audit log."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.members.conftest import Uploader, csv_bytes, id_number

ZHANG = id_number("44010619900307123")
LI = id_number("44010619850611004")
WANG = id_number("44030519921212555")


def _seed(tree: Tree, make_staff: StaffFactory, upload: Uploader) -> None:
    admin = make_staff(tree.province, Role.ADMIN)
    rows = [
        ["张小三", ZHANG, "13812345678", "M1", "GZ-TH-01", "2020-01-15"],
        ["李四", LI, "", "M2", "GZ-TH", ""],
        ["王五", WANG, "13900001111", "M3", "SZ-NS-01", ""],
    ]
    assert upload(tree.province, csv_bytes(rows), admin.headers)["rows_ok"] == 3


def _unmask_rows() -> int:
    with unit_of_work(read_only=True) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "pii.unmask")
            )
            or 0
        )


def test_roster_is_masked_scoped_and_paged(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    _seed(tree, make_staff, upload)
    operator = make_staff(tree.city_a, Role.OPERATOR)
    first = api.get(
        f"/api/v1/orgs/{tree.city_a}/roster", params={"limit": 1}, headers=operator.headers
    ).json()
    assert [(i["name"], i["id_number"], i["phone"]) for i in first["items"]] == [
        ("张*三", "440106********" + ZHANG[-4:], "138****5678")
    ]
    assert first["items"][0]["org_code"] == "GZ-TH-01"
    second = api.get(
        f"/api/v1/orgs/{tree.city_a}/roster",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=operator.headers,
    ).json()
    assert [(i["name"], i["phone"]) for i in second["items"]] == [("李*", None)]
    assert second["next_cursor"] is None
    foreign = api.get(f"/api/v1/orgs/{tree.city_b}/roster", headers=operator.headers)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "org.not_found"


def test_search_by_exact_id_number_phone_or_name(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    _seed(tree, make_staff, upload)
    operator = make_staff(tree.city_a, Role.OPERATOR)
    url = f"/api/v1/orgs/{tree.city_a}/roster"
    by_id = api.get(url, params={"id_number": LI.lower()}, headers=operator.headers).json()
    assert [i["name"] for i in by_id["items"]] == ["李*"]
    by_phone = api.get(url, params={"phone": "138-1234-5678"}, headers=operator.headers).json()
    assert [i["name"] for i in by_phone["items"]] == ["张*三"]
    by_name = api.get(url, params={"name": " 张小三 "}, headers=operator.headers).json()
    assert [i["name"] for i in by_name["items"]] == ["张*三"]
    assert api.get(url, params={"name": "张小"}, headers=operator.headers).json()["items"] == []
    # Someone on city B's roster is not found from city A.
    other = api.get(url, params={"id_number": WANG}, headers=operator.headers).json()
    assert other["items"] == []
    assert api.get(url, params={"name": "王五"}, headers=operator.headers).json()["items"] == []
    too_long = api.get(url, params={"name": "张" * 65}, headers=operator.headers)
    assert too_long.status_code == 422


def test_a_name_search_uses_the_name_index(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    """The planner finds a name's candidates through the expression index, not by reading
    the subtree's rows."""
    from sqlalchemy import text

    from gonghui.members.models import RosterEntry, name_prefix
    from gonghui.pii import PiiField, blind_index

    _seed(tree, make_staff, upload)
    wanted = blind_index(PiiField.NAME, "张小三")
    query = select(RosterEntry.id).where(
        name_prefix(RosterEntry.name_hash) == wanted[:4], RosterEntry.name_hash == wanted
    )
    with unit_of_work(read_only=True) as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        compiled = query.compile()  # named parameters, which text() binds on either database
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        if not sqlite:  # a three-row table is read whole unless told: is the index usable?
            session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(
            str(row) for row in session.execute(text(explain + str(compiled)), compiled.params)
        )
        assert len(session.scalars(query).all()) == 1
    assert "ix_members_roster_entry_name_prefix" in plan


def test_unmask_returns_the_value_and_writes_an_audit_row(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    _seed(tree, make_staff, upload)
    operator = make_staff(tree.city_a, Role.OPERATOR)
    entry = api.get(
        f"/api/v1/orgs/{tree.city_a}/roster", params={"id_number": ZHANG}, headers=operator.headers
    ).json()["items"][0]
    resp = api.post(
        f"/api/v1/roster/{entry['id']}/unmask",
        json={"field": "id_number", "reason": "会员来电核实身份"},
        headers=operator.headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"entry_id": entry["id"], "field": "id_number", "value": ZHANG}
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "pii.unmask")).all()
    assert [
        (r.actor_user_id, r.subject_type, r.subject_id, r.field, r.reason, r.org_id) for r in rows
    ] == [
        (
            operator.user_id,
            "roster_entry",
            str(entry["id"]),
            "id_number",
            "会员来电核实身份",
            tree.grassroots_a1x,
        )
    ]
    assert rows[0].at is not None
    # The single entry view stays masked.
    single = api.get(f"/api/v1/roster/{entry['id']}", headers=operator.headers).json()
    assert single["id_number"] == ZHANG[:6] + "********" + ZHANG[-4:]


def test_operator_of_city_b_gets_404_and_no_audit_row(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    _seed(tree, make_staff, upload)
    operator_a = make_staff(tree.city_a, Role.OPERATOR)
    entry_id = api.get(
        f"/api/v1/orgs/{tree.city_a}/roster",
        params={"id_number": ZHANG},
        headers=operator_a.headers,
    ).json()["items"][0]["id"]
    operator_b = make_staff(tree.city_b, Role.OPERATOR)
    auditor_a = make_staff(tree.city_a, Role.AUDITOR)  # may read, may not unmask
    for who in (operator_b, auditor_a):
        resp = api.post(
            f"/api/v1/roster/{entry_id}/unmask",
            json={"field": "name", "reason": "curious"},
            headers=who.headers,
        )
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "roster_entry.not_found"
    assert api.get(f"/api/v1/roster/{entry_id}", headers=operator_b.headers).status_code == 404
    assert _unmask_rows() == 0


def test_unmask_needs_a_reason(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    _seed(tree, make_staff, upload)
    operator = make_staff(tree.city_a, Role.OPERATOR)
    entry_id = api.get(
        f"/api/v1/orgs/{tree.city_a}/roster", params={"id_number": ZHANG}, headers=operator.headers
    ).json()["items"][0]["id"]
    resp = api.post(
        f"/api/v1/roster/{entry_id}/unmask", json={"field": "phone"}, headers=operator.headers
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "reason"
    assert _unmask_rows() == 0

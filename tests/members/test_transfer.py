"""Transfers move a person and their membership between orgs; the caller must manage both."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members.models import Membership, RosterEntry, Transfer
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.members.conftest import MemberFactory, Uploader, csv_bytes, id_number

ZHANG = id_number("44010619900307123")


def _state(entry_id: int) -> tuple[int, int | None, int]:
    with unit_of_work(read_only=True) as session:
        entry = session.get(RosterEntry, entry_id)
        assert entry is not None
        member_org = session.scalar(
            select(Membership.org_id).where(Membership.roster_entry_id == entry_id)
        )
        transfers = len(session.scalars(select(Transfer)).all())
        return entry.org_id, member_org, transfers


def test_transfer_moves_membership_and_needs_rights_on_both_sides(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    upload: Uploader,
) -> None:
    operator_a = make_staff(tree.city_a, Role.OPERATOR)
    rows = [["张三", ZHANG, "", "", "GZ-TH-01", ""]]
    assert upload(tree.city_a, csv_bytes(rows), operator_a.headers)["rows_ok"] == 1
    member = make_member()
    verified = api.post(
        "/api/v1/members/verify", json={"name": "张三", "id_number": ZHANG}, headers=member.headers
    )
    assert verified.status_code == 201
    entry_id = verified.json()["roster_entry_id"]

    # City A's operator does not manage city B: the destination is not found.
    refused = api.post(
        f"/api/v1/roster/{entry_id}/transfer",
        json={"to_org_id": tree.grassroots_b1, "reason": "工作调动"},
        headers=operator_a.headers,
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "org.not_found"
    # City B's operator does not manage the source.
    operator_b = make_staff(tree.city_b, Role.OPERATOR)
    refused = api.post(
        f"/api/v1/roster/{entry_id}/transfer",
        json={"to_org_id": tree.grassroots_b1, "reason": "工作调动"},
        headers=operator_b.headers,
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "roster_entry.not_found"
    assert _state(entry_id) == (tree.grassroots_a1x, tree.grassroots_a1x, 0)

    operator_p = make_staff(tree.province, Role.OPERATOR)
    moved = api.post(
        f"/api/v1/roster/{entry_id}/transfer",
        json={"to_org_id": tree.grassroots_b1, "reason": "工作调动"},
        headers=operator_p.headers,
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["org_id"], moved.json()["verified_user_id"]) == (
        tree.grassroots_b1,
        member.user_id,
    )
    assert _state(entry_id) == (tree.grassroots_b1, tree.grassroots_b1, 1)
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "members.transfer")
        ).all()
        transfer = session.scalars(select(Transfer)).one()
    assert sorted(a.org_id for a in rows if a.org_id is not None) == sorted(
        [tree.grassroots_a1x, tree.grassroots_b1]
    )
    assert {(a.actor_user_id, a.reason) for a in rows} == {(operator_p.user_id, "工作调动")}
    assert (transfer.from_org_id, transfer.to_org_id, transfer.by_user_id) == (
        tree.grassroots_a1x,
        tree.grassroots_b1,
        operator_p.user_id,
    )
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert [o["code"] for o in me["org_path"]] == ["GD", "SZ", "SZ-NS-01"]
    # City A no longer sees the person.
    assert api.get(f"/api/v1/roster/{entry_id}", headers=operator_a.headers).status_code == 404


def test_transfer_to_the_same_org_is_refused(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    upload(tree.city_a, csv_bytes([["张三", ZHANG, "", "", "GZ-TH-01", ""]]), operator.headers)
    entry_id = api.get(f"/api/v1/orgs/{tree.city_a}/roster", headers=operator.headers).json()[
        "items"
    ][0]["id"]
    resp = api.post(
        f"/api/v1/roster/{entry_id}/transfer",
        json={"to_org_id": tree.grassroots_a1x},
        headers=operator.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "members.transfer_same_org"
    assert _state(entry_id) == (tree.grassroots_a1x, None, 0)

"""The wallet and the append-only ledger: issue, redeem, expire, revoke; exports."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from gonghui import clock
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerEntry, Voucher, VoucherStatus
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import Member, MemberFactory, create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree

VOUCHER = {
    "name": "满50减10",
    "kind": "voucher",
    "weight": 1,
    "stock": 10,
    "value": 1000,
    "threshold_cents": 5000,
    "valid_days": 7,
}


def _win_voucher(
    api: httpx.Client, tree: Tree, op_headers: dict[str, str], member: Member
) -> tuple[int, int]:
    activity = create_activity(api, op_headers, tree.city_a, config=lottery_config([VOUCHER]))
    drawn = api.post(f"/api/v1/activities/{activity['id']}/draws", headers=member.headers)
    assert drawn.json()["outcome"] == "won"
    return activity["id"], int(drawn.json()["benefit"].split(":")[1])


def _actions(membership_id: int) -> list[tuple[str, str, int]]:
    with unit_of_work() as session:
        rows = session.query(LedgerEntry).filter_by(membership_id=membership_id).order_by("id")
        return [(str(r.kind), str(r.action), r.amount) for r in rows]


def test_won_voucher_is_in_wallet_and_ledger(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a)
    _, voucher_id = _win_voucher(api, tree, op.headers, member)
    wallet = api.get("/api/v1/me/wallet", headers=member.headers).json()
    assert [
        (v["id"], v["value_cents"], v["threshold_cents"], v["status"]) for v in wallet["vouchers"]
    ] == [(voucher_id, 1000, 5000, "issued")]
    assert len(wallet["vouchers"][0]["code"]) == 12

    assert _actions(member.membership_id) == [("voucher", "issue", 1000)]
    # Members do not spend union vouchers themselves: a merchant's till does (merchants).
    spend = api.post(
        f"/api/v1/me/vouchers/{voucher_id}/redeem",
        json={"order_cents": 5000},
        headers=member.headers,
    )
    assert spend.status_code in (404, 405)


def test_expiry_and_revocation_are_ledger_rows(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a)
    _, first = _win_voucher(api, tree, op.headers, member)
    _, second = _win_voucher(api, tree, op.headers, member)
    with unit_of_work() as session:
        voucher = session.get(Voucher, second)
        assert voucher is not None
        benefits.revoke_voucher(session, actor=SYSTEM, voucher=voucher, reason="duplicate")
    clock.advance(timedelta(days=8))
    with unit_of_work() as session:
        assert benefits.expire_vouchers(session) == 1
        assert benefits.expire_vouchers(session) == 0
        assert session.get(Voucher, first).status == VoucherStatus.EXPIRED  # type: ignore[union-attr]
    assert _actions(member.membership_id) == [
        ("voucher", "issue", 1000),
        ("voucher", "issue", 1000),
        ("voucher", "revoke", -1000),
        ("voucher", "expire", -1000),
    ]


def test_ledger_refuses_update_and_delete(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a)
    _win_voucher(api, tree, op.headers, member)
    for statement in (
        "UPDATE benefits_ledger_entry SET amount = 999999",
        "DELETE FROM benefits_ledger_entry",
    ):
        with pytest.raises(DatabaseError), unit_of_work() as session:
            session.execute(text(statement))
    assert _actions(member.membership_id) == [("voucher", "issue", 1000)]


def test_operator_exports_the_ledger_as_csv_and_xlsx(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a)
    activity_id, voucher_id = _win_voucher(api, tree, op.headers, member)
    with unit_of_work() as session:
        code = session.get(Voucher, voucher_id).code  # type: ignore[union-attr]

    resp = api.get(f"/api/v1/activities/{activity_id}/ledger.csv", headers=op.headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0] == [
        "entry_id",
        "at",
        "membership_id",
        "kind",
        "action",
        "amount",
        "voucher_code",
        "source",
    ]
    assert [r[2:] for r in rows[1:]] == [
        [str(member.membership_id), "voucher", "issue", "1000", code, f"lottery:{activity_id}"]
    ]

    resp = api.get(f"/api/v1/activities/{activity_id}/ledger.xlsx", headers=op.headers)
    assert resp.status_code == 200
    sheet = load_workbook(io.BytesIO(resp.content), read_only=True)["ledger"]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "entry_id"
    assert values[1][2:] == [
        member.membership_id,
        "voucher",
        "issue",
        1000,
        code,
        f"lottery:{activity_id}",
    ]
    assert (
        api.get(f"/api/v1/activities/{activity_id}/ledger.csv", headers=member.headers).status_code
        == 403
    )

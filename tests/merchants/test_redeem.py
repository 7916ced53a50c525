"""A cashier redeems a member's union voucher from the code the member shows: once, within
the voucher's rules and the merchant's scope; the union settles from the statement."""

from __future__ import annotations

import io
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from openpyxl import load_workbook
from sqlalchemy import func, select

from gonghui import clock
from gonghui.benefits.models import LedgerAction, LedgerEntry, Voucher, VoucherStatus
from gonghui.db import unit_of_work
from gonghui.merchants.models import Redemption
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory
from tests.fixtures import StaffFactory, Tree
from tests.merchants.conftest import (
    Till,
    add_till,
    code_of,
    issue,
    open_merchant,
    voucher_activity,
)

TILL = "/api/v1/cashier/redemptions"


def test_a_won_voucher_is_redeemed_once_at_a_till_and_settled(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.grassroots_a1x)
    activity_id = voucher_activity(api, op.headers, tree.city_a)
    drawn = api.post(f"/api/v1/activities/{activity_id}/draws", headers=member.headers)
    voucher_id = int(drawn.json()["benefit"].split(":")[1])
    till = add_till(api, op.headers, open_merchant(api, op.headers, tree.district_a1))
    code = code_of(api, voucher_id, member.headers)
    assert code.startswith("GHV1.")

    short = api.post(TILL, json={"code": code, "order_cents": 4999}, headers=till.headers)
    assert short.status_code == 409
    assert short.json()["error"]["code"] == "benefits.below_threshold"
    done = api.post(TILL, json={"code": code, "order_cents": 5800}, headers=till.headers)
    assert done.status_code == 201, done.text
    line = done.json()
    assert (line["voucher_id"], line["voucher_name"], line["value_cents"]) == (
        voucher_id,
        "满50减10",
        1000,
    )
    assert line["order_cents"] == 5800
    again = api.post(TILL, json={"code": code, "order_cents": 5800}, headers=till.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "benefits.voucher_not_redeemable"
    # Once spent, the member's app has no code to show for it.
    spent = api.get(f"/api/v1/me/vouchers/{voucher_id}/code", headers=member.headers)
    assert spent.json()["error"]["code"] == "benefits.voucher_not_redeemable"

    wallet = api.get("/api/v1/me/wallet", headers=member.headers).json()
    assert [v["status"] for v in wallet["vouchers"]] == ["redeemed"]
    ledger = api.get("/api/v1/me/ledger", headers=member.headers).json()["items"]
    assert [(e["action"], e["amount"], e["source"]) for e in ledger] == [
        ("redeem", -1000, "merchant"),
        ("issue", 1000, f"lottery:{activity_id}"),
    ]
    assert ledger[0]["details"] == {
        "order_cents": 5800,
        "merchant_id": till.merchant_id,
        "cashier_id": till.cashier_id,
    }

    # The till and the union see the same redemption; the statement settles it.
    at_till = api.get(TILL, headers=till.headers).json()
    assert [r["voucher_id"] for r in at_till] == [voucher_id]
    merchant = f"/api/v1/merchants/{till.merchant_id}"
    assert [r["id"] for r in api.get(f"{merchant}/redemptions", headers=op.headers).json()] == [
        line["id"]
    ]
    today = clock.local_day().isoformat()
    sheet = api.get(f"{merchant}/statement.xlsx?first={today}&last={today}", headers=op.headers)
    assert sheet.status_code == 200
    rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
    assert rows[0][:2] == ("商户核销结算单", "天河助农超市")
    assert rows[3][:5] == ("核销时间", "券码", "券名称", "券面额（元）", "订单金额（元）")
    assert rows[4][1:5] == (line["voucher_code"], "满50减10", 10, 58)
    assert str(rows[4][5]).startswith("收银员till")
    assert rows[5][:5] == ("合计", 1, None, 10, 58)
    english = api.get(f"{merchant}/statement.xlsx?lang=en", headers=op.headers)
    first_row = next(load_workbook(io.BytesIO(english.content)).active.iter_rows(values_only=True))
    assert first_row[0] == "Merchant settlement statement"
    backwards = api.get(
        f"{merchant}/statement.xlsx?first={today}&last=2020-01-01", headers=op.headers
    )
    assert backwards.json()["error"]["code"] == "merchants.bad_period"


def test_a_code_is_good_for_a_minute_and_only_as_signed(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a)
    (voucher_id,) = issue(voucher_activity(api, op.headers, tree.city_a), member.membership_id)
    till = add_till(api, op.headers, open_merchant(api, op.headers, tree.city_a))
    code = code_of(api, voucher_id, member.headers)
    prefix, voucher, expires, signature = code.split(".")
    forged = [
        f"{prefix}.{voucher_id + 1}.{expires}.{signature}",  # another voucher
        f"{prefix}.{voucher}.{int(expires) + 3600}.{signature}",  # a longer life
        f"{prefix}.{voucher}.{expires}.{'A' * len(signature)}",
        f"GHV2.{voucher}.{expires}.{signature}",
        "not a code",
        f"{prefix}.{'9' * 30}.{expires}.{signature}",
    ]
    for text in forged:
        refused = api.post(TILL, json={"code": text, "order_cents": 9000}, headers=till.headers)
        assert refused.status_code == 422, text
        assert refused.json()["error"]["code"] == "merchants.code_invalid"
    # Another member cannot have a code made for this voucher.
    other = make_member(tree.city_a)
    stolen = api.get(f"/api/v1/me/vouchers/{voucher_id}/code", headers=other.headers)
    assert stolen.status_code == 404

    clock.advance(timedelta(seconds=61))
    late = api.post(TILL, json={"code": code, "order_cents": 9000}, headers=till.headers)
    assert late.json()["error"]["code"] == "merchants.code_expired"
    fresh = code_of(api, voucher_id, member.headers)
    redeemed = api.post(
        TILL, json={"code": fresh.lower(), "order_cents": 9000}, headers=till.headers
    )
    assert redeemed.status_code == 201
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Redemption)) == 1


def test_only_merchants_within_the_issuing_union_take_its_vouchers(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    city_a = make_staff(tree.city_a, Role.OPERATOR)
    province = make_staff(tree.province, Role.OPERATOR)
    member = make_member(tree.city_a)
    voucher_ids = issue(voucher_activity(api, city_a.headers, tree.city_a), member.membership_id, 2)
    elsewhere = add_till(api, province.headers, open_merchant(api, province.headers, tree.city_b))
    above = add_till(api, province.headers, open_merchant(api, province.headers, tree.province))
    for till in (elsewhere, above):
        code = code_of(api, voucher_ids[0], member.headers)
        refused = api.post(TILL, json={"code": code, "order_cents": 9000}, headers=till.headers)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "merchants.voucher_not_accepted"
    with unit_of_work() as session:
        assert session.get(Voucher, voucher_ids[0]).status == VoucherStatus.ISSUED  # type: ignore[union-attr]

    # A closed merchant's or a disabled cashier's till redeems nothing.
    below = open_merchant(api, city_a.headers, tree.grassroots_a1x)
    first, second = add_till(api, city_a.headers, below), add_till(api, city_a.headers, below)
    disabled = api.post(
        f"/api/v1/merchants/{below}/cashiers/{first.cashier_id}/disable", headers=city_a.headers
    )
    assert disabled.json()["active"] is False
    code = code_of(api, voucher_ids[1], member.headers)
    refused = api.post(TILL, json={"code": code, "order_cents": 9000}, headers=first.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "merchants.not_cashier"
    closed = api.post(f"/api/v1/merchants/{below}/close", headers=city_a.headers)
    assert closed.json()["active"] is False
    refused = api.post(TILL, json={"code": code, "order_cents": 9000}, headers=second.headers)
    assert refused.json()["error"]["code"] == "merchants.not_cashier"


def test_who_may_manage_merchants_and_work_a_till(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    city_a = make_staff(tree.city_a, Role.OPERATOR)
    city_b = make_staff(tree.city_b, Role.OPERATOR)
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    merchant_id = open_merchant(api, city_a.headers, tree.district_a1)
    till = add_till(api, city_a.headers, merchant_id)
    # Outside one's subtree a merchant does not exist; an auditor manages none.
    assert api.get(f"/api/v1/merchants/{merchant_id}", headers=city_b.headers).status_code == 404
    assert api.get("/api/v1/merchants", headers=city_b.headers).json() == []
    refused = api.post(
        "/api/v1/merchants", json={"org_id": tree.city_b, "name": "x"}, headers=city_a.headers
    )
    assert refused.status_code == 404
    assert api.get(f"/api/v1/merchants/{merchant_id}", headers=auditor.headers).status_code == 404
    # A cashier is not staff: the staff API and the console stay closed.
    assert api.get("/api/v1/merchants", headers=till.headers).status_code == 403
    console = api.get("/console/", headers=till.headers, follow_redirects=False)
    assert console.status_code in (302, 303, 307)
    # A member's sign-in is not a till, nor is an operator's.
    member = make_member(tree.city_a)
    body = {"code": "GHV1.1.1.A", "order_cents": 1}
    assert api.post(TILL, json=body, headers=member.headers).json()["error"]["code"] == (
        "accounts.not_staff"
    )
    assert api.post(TILL, json=body, headers=city_a.headers).json()["error"]["code"] == (
        "merchants.not_cashier"
    )
    # The cashier signs in with the password the operator set.
    signed_in = api.post(
        "/api/v1/auth/password", json={"username": "till1", "password": "wrong-password-x"}
    )
    assert signed_in.status_code == 401
    taken = api.post(
        f"/api/v1/merchants/{merchant_id}/cashiers",
        json={"username": f"till{till.cashier_id}x", "password": "short", "name": "n"},
        headers=city_a.headers,
    )
    assert taken.status_code == 422


def test_a_till_is_rate_limited(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    till = add_till(api, op.headers, open_merchant(api, op.headers, tree.city_a))
    headers = till.headers
    answers = Counter(
        api.post(TILL, json={"code": "nonsense", "order_cents": 1}, headers=headers).status_code
        for _ in range(62)
    )
    assert answers == {422: 60, 429: 2}


def test_two_hundred_tills_racing_redeem_each_voucher_once(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity_id = voucher_activity(api, op.headers, tree.city_a)
    members = [make_member(tree.city_a) for _ in range(10)]
    vouchers = [(m, v) for m in members for v in issue(activity_id, m.membership_id, 5)]
    merchant_id = open_merchant(api, op.headers, tree.city_a)
    tills: list[Till] = [add_till(api, op.headers, merchant_id) for _ in range(8)]
    till_headers = [t.headers for t in tills]
    codes = [code_of(api, v, m.headers) for m, v in vouchers]
    # Each of the 50 codes is presented at four tills at once: 200 requests.
    jobs = [(codes[i % 50], till_headers[i % 8]) for i in range(200)]

    def present(job: tuple[str, dict[str, str]]) -> tuple[int, str]:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            answer = client.post(TILL, json={"code": job[0], "order_cents": 6000}, headers=job[1])
        body = answer.json()
        return answer.status_code, body.get("error", {}).get("code", str(body.get("voucher_id")))

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(present, jobs))
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 50, 409: 150}
    assert {code for status, code in answers if status == 409} == {
        "benefits.voucher_not_redeemable"
    }
    assert sorted(int(code) for status, code in answers if status == 201) == sorted(
        v for _, v in vouchers
    )
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Redemption)) == 50
        redeems = session.scalars(
            select(LedgerEntry.voucher_id).where(LedgerEntry.action == LedgerAction.REDEEM)
        ).all()
        assert sorted(redeems) == sorted(v for _, v in vouchers)
        statuses_now = session.scalars(
            select(Voucher.status).where(Voucher.activity_id == activity_id)
        ).all()
        assert set(statuses_now) == {VoucherStatus.REDEEMED}

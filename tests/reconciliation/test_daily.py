"""The daily reconciliation over HTTP through the WeChat Pay simulator: coupons spent and
mall orders paid and refunded agree with WeChat Pay's use flow and trade bill, and every
planted difference is listed; the comparison rules on their own."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import httpx
from openpyxl import load_workbook  # type: ignore[import-untyped]

from gonghui import clock, tasks
from gonghui.orgs.models import Role
from gonghui.reconciliation import compare
from gonghui.reconciliation.models import DifferenceKind, Source
from tests.activities.conftest import MemberFactory
from tests.activities.voucher_grab.conftest import claim, grab, link_wechat, my_claims
from tests.fixtures import StaffFactory, Tree
from tests.mall.conftest import checkout, order, pay, product
from tests.reconciliation.helpers import planted_payment

REPORTS = "/api/v1/reconciliation/reports"


def _use(api: httpx.Client, coupon_id: str, **how: Any) -> None:
    used = api.post(f"/_sim/wechatpay/_control/coupons/{coupon_id}/use", json=how)
    assert used.json()["used"] is True, used.text


def test_the_day_agrees_and_every_planted_difference_is_listed(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    operator = make_staff(tree.province, Role.OPERATOR).headers
    admin = make_staff(None, None, platform_admin=True).headers

    # Four members grab a coupon each; WeChat Pay sends them.
    activity_id, stock_id = grab(api, tree, operator, max_coupons=10)
    members = [make_member(tree.city_a) for _ in range(4)]
    for member in members:
        link_wechat(member)
        assert claim(api, activity_id, stock_id, member).status_code == 201
    assert tasks.run_due() >= 4  # vouchers.send_coupon
    coupons = [my_claims(api, m)[0]["coupon_id"] for m in members]
    _use(api, coupons[0])
    _use(api, coupons[1])
    _use(api, coupons[2], hold=True)  # its COUPON.USE never reaches us
    _use(api, coupons[3], recorded_amount=800)  # WeChat Pay's record says 8.00 was taken

    # One mall order paid, another paid and refunded; one payment that is not ours.
    item = product(api, operator, tree.province, price_cents=5000, stock=5)
    sku = item["skus"][0]["id"]
    buyer = make_member(tree.district_a1)
    link_wechat(buyer)
    kept = checkout(api, buyer, items=[{"sku_id": sku, "quantity": 1}]).json()
    pay(api, buyer, kept["id"])
    returned = checkout(api, buyer, items=[{"sku_id": sku, "quantity": 2}]).json()
    pay(api, buyer, returned["id"])
    api.post(
        f"/api/v1/me/mall/orders/{returned['id']}/refund",
        json={"reason": "不想要了"},
        headers=buyer.headers,
    )
    api.post(f"/api/v1/mall/orders/{returned['id']}/refund/approve", headers=operator)
    assert tasks.run_due() >= 1  # mall.send_refund
    out_refund_no = f"{returned['out_trade_no']}R"
    api.post(f"/_sim/wechatpay/_control/refunds/{out_refund_no}/succeed", json={})
    assert order(api, buyer, returned["id"])["state"] == "refunded"
    planted = planted_payment(api)

    # Only the deployment's operators reconcile; a day to come has nothing to compare.
    today = clock.local_day()
    assert api.post(REPORTS, json={"day": today.isoformat()}, headers=operator).status_code == 403
    future = today.replace(year=today.year + 1).isoformat()
    assert api.post(REPORTS, json={"day": future}, headers=admin).status_code == 422
    queued = api.post(REPORTS, json={"day": today.isoformat()}, headers=admin)
    assert queued.status_code == 202
    assert tasks.run_due() >= 1  # reconciliation.run

    report = api.get(f"{REPORTS}/{today.isoformat()}", headers=admin).json()
    assert report["ok"] is True
    assert report["error"] is None
    found = {
        (d["source"], d["kind"], d["reference"], d["ours_cents"], d["theirs_cents"])
        for d in report["items"]
    }
    assert found == {
        ("coupons", "unknown_here", coupons[2], None, 1000),
        ("coupons", "amount_mismatch", coupons[3], 1000, 800),
        ("trades", "unknown_here", planted, None, 4321),
    }
    assert report["differences"] == 3
    # Compared: 3 coupon uses here, 4 there; 2 payments here, 3 there; 1 refund each.
    assert report["checked"] == 3 + 4 + 2 + 3 + 1 + 1
    assert [r["day"] for r in api.get(REPORTS, headers=admin).json()] == [today.isoformat()]

    sheet = api.get(f"{REPORTS}/{today.isoformat()}/differences.xlsx", headers=admin)
    rows = list(load_workbook(io.BytesIO(sheet.content)).active.iter_rows(values_only=True))
    assert rows[0] == ("source", "kind", "reference", "ours_cents", "theirs_cents", "note")
    assert len(rows) == 4

    # The late notification arrives; run again: the report is replaced, that one is gone.
    assert api.post("/_sim/wechatpay/_control/notifications/release").status_code == 200
    api.post(REPORTS, json={"day": today.isoformat()}, headers=admin)
    assert tasks.run_due() >= 1
    again = api.get(f"{REPORTS}/{today.isoformat()}", headers=admin).json()
    assert {d["reference"] for d in again["items"]} == {coupons[3], planted}


def test_wechat_pay_unreachable_leaves_a_failed_report_with_no_differences(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    operator = make_staff(tree.province, Role.OPERATOR).headers
    admin = make_staff(None, None, platform_admin=True).headers
    grab(api, tree, operator, max_coupons=10)
    api.post("/_sim/wechatpay/_control/faults", json={"faults": ["error"] * 10, "latency_ms": 0})
    today = clock.local_day().isoformat()
    api.post(REPORTS, json={"day": today}, headers=admin)
    assert tasks.run_due() >= 1
    report = api.get(f"{REPORTS}/{today}", headers=admin).json()
    assert report["ok"] is False
    assert "WeChat Pay" in report["error"]
    assert report["items"] == []


def test_the_comparison_rules() -> None:
    assert compare.cents("12.30") == 1230
    assert compare.cents("0.01") == 1
    assert compare.cents("1.005") is None
    assert compare.cents("abc") is None
    found = compare.amounts(
        Source.TRADES, {"A": 100, "B": 200, "C": 300}, {"B": 200, "C": 301, "D": 5}, what="payment"
    )
    assert [(d.kind, d.reference, d.ours_cents, d.theirs_cents) for d in found] == [
        (DifferenceKind.UNKNOWN_THERE, "A", 100, None),
        (DifferenceKind.AMOUNT, "C", 300, 301),
        (DifferenceKind.UNKNOWN_HERE, "D", None, 5),
    ]
    counted = compare.coupon_stock("S1", used_here={}, used_there={}, sent_here=3, sent_there=2)
    assert [(d.kind, d.reference, d.note) for d in counted] == [
        (DifferenceKind.COUNT, "S1", "coupons sent: 3 here, 2 at WeChat Pay")
    ]


def test_a_payment_made_before_midnight_and_heard_of_after_counts_on_its_day(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    """WeChat Pay's bill counts a payment on the day it succeeded; so do we, however late
    its notification arrives."""
    operator = make_staff(tree.province, Role.OPERATOR).headers
    item = product(api, operator, tree.province, price_cents=5000, stock=5)
    buyer = make_member(tree.district_a1)
    link_wechat(buyer)
    day = clock.local_day() + timedelta(days=1)  # tomorrow: its 23:59 is always ahead
    clock.advance(clock.day_start(day) + timedelta(days=1, seconds=-60) - clock.now())
    placed = checkout(api, buyer, items=[{"sku_id": item["skus"][0]["id"], "quantity": 1}]).json()
    clock.advance(timedelta(seconds=58))
    pay(api, buyer, placed["id"], hold=True)  # at 23:59:58; its notification held
    clock.advance(timedelta(seconds=5))
    assert clock.local_day() != day
    assert api.post("/_sim/wechatpay/_control/notifications/release").status_code == 200
    assert order(api, buyer, placed["id"])["state"] == "paid"

    admin = make_staff(None, None, platform_admin=True).headers  # signed in on the new day
    queued = api.post(REPORTS, json={"day": day.isoformat()}, headers=admin)
    assert queued.status_code == 202, queued.text
    assert tasks.run_due() >= 1
    report = api.get(f"{REPORTS}/{day.isoformat()}", headers=admin).json()
    assert report["ok"] is True
    assert [d for d in report["items"] if d["reference"] == placed["out_trade_no"]] == []

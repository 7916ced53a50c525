"""A member's order end to end over HTTP through the WeChat Pay simulator: checkout with a
subsidy and a voucher priced on the server, payment by JSAPI and its notification (once
however often it comes), shipping, receipt and completion; a refund that gives back the
stock, the subsidy and the voucher; a late notification found by asking; an unpaid order
closed after the timeout."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
from openpyxl import load_workbook  # type: ignore[import-untyped]
from wechatpayv3.utils import rsa_verify

from gonghui import clock, tasks
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.mall.sweep import sweep
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory, staff_headers
from tests.fixtures import StaffFactory, Tree
from tests.mall.conftest import (
    budget_spent,
    checkout,
    ledger,
    link_wechat,
    order,
    pay,
    product,
    sale,
    stock,
    voucher,
)


def test_an_order_with_subsidy_and_voucher_is_paid_shipped_received_and_completed(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    province_staff = make_staff(tree.province, Role.OPERATOR)
    operator = province_staff.headers
    item = product(api, operator, tree.province, price_cents=5000, stock=10)
    sku = item["skus"][0]["id"]
    activity = sale(api, operator, tree.province, percent=20, cap_cents=3000)
    member = make_member(tree.district_a1)
    ticket = voucher(member, value_cents=1000, threshold_cents=5000)

    shelf = api.get("/api/v1/mall/shelf", headers=member.headers).json()
    assert [p["id"] for p in shelf] == [item["id"]]
    cart = api.put(
        "/api/v1/me/mall/cart/items", json={"sku_id": sku, "quantity": 2}, headers=member.headers
    )
    assert cart.json()["goods_cents"] == 10000

    unlinked = checkout(api, member, activity_id=activity, voucher_id=ticket)
    assert (unlinked.status_code, unlinked.json()["error"]["code"]) == (
        409,
        "mall.wechat_not_linked",
    )
    assert stock(sku) == (10, 0)  # nothing taken
    openid = link_wechat(member)

    placed = checkout(
        api, member, activity_id=activity, voucher_id=ticket, headers={"Idempotency-Key": "k1"}
    )
    assert placed.status_code == 201, placed.text
    body = placed.json()
    # 2 × 50.00; the union pays 20 % (20.00, within the 30.00 cap), the voucher 10.00.
    assert (body["goods_cents"], body["subsidy_cents"], body["voucher_cents"]) == (
        10000,
        2000,
        1000,
    )
    assert (body["total_cents"], body["state"]) == (7000, "unpaid")
    assert body["address"]["address"].endswith("***")
    again = checkout(
        api, member, activity_id=activity, voucher_id=ticket, headers={"Idempotency-Key": "k1"}
    )
    assert again.json()["id"] == body["id"]  # the retry gets the first answer
    assert stock(sku) == (8, 2)
    assert budget_spent(activity) == 2000
    assert api.get("/api/v1/me/mall/cart", headers=member.headers).json()["items"] == []

    params = api.post(f"/api/v1/me/mall/orders/{body['id']}/payment", headers=member.headers)
    assert params.status_code == 200, params.text
    p = params.json()
    assert (p["appId"], p["signType"]) == ("wx_sim_mini", "RSA")
    assert p["package"].startswith("prepay_id=wx")
    merchant_key = sim.load_secrets().merchant_key.public_key()
    # paySign: the merchant's RSA-SHA256 over "appId\ntimeStamp\nnonceStr\npackage\n".
    rest = f"{p['nonceStr']}\n{p['package']}"
    assert rsa_verify(p["appId"], p["timeStamp"], rest, p["paySign"], merchant_key)
    paid = api.post(
        f"/_sim/wechatpay/_control/transactions/{body['out_trade_no']}/pay",
        json={"duplicate": True},
    )
    assert paid.json()["statuses"] == [204, 204]
    assert order(api, member, body["id"])["state"] == "paid"
    assert ledger(member.membership_id)[-1] == (
        "payment",
        "pay",
        7000,
        "wechatpay.transaction_success",
    )
    assert [row for row in ledger(member.membership_id) if row[0] == "payment"] == [
        ("payment", "pay", 7000, "wechatpay.transaction_success")
    ]
    assert openid

    shipped = api.post(
        f"/api/v1/mall/orders/{body['id']}/ship",
        json={"courier_company": "顺丰速运", "courier_no": "SF1234567890"},
        headers=operator,
    )
    assert shipped.status_code == 200, shipped.text
    assert (shipped.json()["state"], shipped.json()["courier_no"]) == ("shipped", "SF1234567890")
    received = api.post(f"/api/v1/me/mall/orders/{body['id']}/receipt", headers=member.headers)
    assert received.json()["state"] == "received"
    clock.advance(timedelta(days=8))
    assert sweep()["moved_on"] == 1
    assert order(api, member, body["id"])["state"] == "completed"
    assert ledger(member.membership_id) == [
        ("voucher", "issue", 1000, "test"),
        ("subsidy", "issue", 2000, "mall.checkout"),
        ("voucher", "redeem", -1000, "mall.checkout"),
        ("payment", "pay", 7000, "wechatpay.transaction_success"),
    ]

    report = api.get("/api/v1/mall/reports/sales.xlsx", headers=staff_headers(province_staff))
    assert report.status_code == 200, report.text
    book = load_workbook(io.BytesIO(report.content), read_only=True)
    regions = [list(r) for r in book["按帮扶地区"].iter_rows(min_row=2, values_only=True)]
    unions = [list(r) for r in book["按工会"].iter_rows(min_row=2, values_only=True)]
    assert regions == [["贵州省黔东南州", 1, 2, 10000]]
    assert unions == [["GZ-TH", "天河区总工会", 1, 10000, 2000, 1000, 7000]]
    elsewhere = make_staff(tree.city_b, Role.OPERATOR)
    hidden = api.get(f"/api/v1/mall/orders/{body['id']}", headers=elsewhere.headers)
    assert hidden.status_code == 404  # another city's operator does not see it


def test_a_refund_gives_back_stock_subsidy_and_voucher_once(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    item = product(api, operator, tree.province, price_cents=5000, stock=5)
    sku = item["skus"][0]["id"]
    activity = sale(api, operator, tree.province)
    member = make_member(tree.district_a1)
    link_wechat(member)
    ticket = voucher(member)
    placed = checkout(
        api, member, items=[{"sku_id": sku, "quantity": 1}], activity_id=activity, voucher_id=ticket
    ).json()
    assert placed["total_cents"] == 5000 - 1000 - 1000
    pay(api, member, placed["id"])
    asked = api.post(
        f"/api/v1/me/mall/orders/{placed['id']}/refund",
        json={"reason": "不想要了"},
        headers=member.headers,
    )
    assert asked.json()["state"] == "refund_requested"
    approved = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/approve", headers=operator)
    assert approved.json()["state"] == "refunding"
    assert tasks.run_due() >= 1  # mall.send_refund
    out_refund_no = f"{placed['out_trade_no']}R"
    done = api.post(
        f"/_sim/wechatpay/_control/refunds/{out_refund_no}/succeed", json={"duplicate": True}
    )
    assert done.json()["statuses"] == [204, 204]
    assert order(api, member, placed["id"])["state"] == "refunded"
    assert stock(sku) == (5, 0)
    assert budget_spent(activity) == 0
    wallet = api.get("/api/v1/me/wallet", headers=member.headers).json()
    assert [v["status"] for v in wallet["vouchers"]] == ["issued"]
    assert ledger(member.membership_id)[-4:] == [
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
        ("subsidy", "revoke", -1000, "mall.refund"),
        ("voucher", "issue", 1000, "mall.refund"),
    ]


def test_a_late_payment_notification_is_found_by_asking_and_counted_once(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    item = product(api, operator, tree.province)
    member = make_member(tree.district_a1)
    link_wechat(member)
    placed = checkout(api, member, items=[{"sku_id": item["skus"][0]["id"], "quantity": 1}]).json()
    pay(api, member, placed["id"], hold=True)
    assert order(api, member, placed["id"])["state"] == "unpaid"
    clock.advance(timedelta(minutes=2))
    assert sweep()["late_payments"] == 1
    assert order(api, member, placed["id"])["state"] == "paid"
    released = api.post("/_sim/wechatpay/_control/notifications/release")
    assert released.json()["statuses"] == [204]
    assert [row for row in ledger(member.membership_id) if row[0] == "payment"] == [
        ("payment", "pay", 5000, "wechatpay.query")
    ]


def test_an_unpaid_order_is_closed_after_the_timeout_and_gives_everything_back(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    item = product(api, operator, tree.province, stock=3)
    sku = item["skus"][0]["id"]
    activity = sale(api, operator, tree.province)
    member = make_member(tree.district_a1)
    link_wechat(member)
    ticket = voucher(member)
    placed = checkout(
        api, member, items=[{"sku_id": sku, "quantity": 3}], activity_id=activity, voucher_id=ticket
    ).json()
    assert (
        api.post(
            f"/api/v1/me/mall/orders/{placed['id']}/payment", headers=member.headers
        ).status_code
        == 200
    )
    assert (stock(sku), budget_spent(activity)) == ((0, 3), 3000)
    clock.advance(timedelta(minutes=31))
    assert sweep()["closed"] == 1
    closed = order(api, member, placed["id"])
    assert closed["state"] == "cancelled"
    assert (stock(sku), budget_spent(activity)) == ((3, 0), 0)
    late = api.post(f"/_sim/wechatpay/_control/transactions/{placed['out_trade_no']}/pay", json={})
    assert late.json() == {"paid": False}  # closed at WeChat Pay too
    assert sweep()["closed"] == 0  # once
    assert [row for row in ledger(member.membership_id) if row[0] != "voucher"] == [
        ("subsidy", "issue", 3000, "mall.checkout"),
        ("subsidy", "revoke", -3000, "mall.timeout"),
    ]

"""Refunds that do not simply succeed, over HTTP through the WeChat Pay simulator: closed,
abnormal (by notification or found by asking) or refused for the merchant's balance, each
visible as ``refund_failed`` with its reason and taken on by an operator (a retry under a
new number, or an abnormal refund applied to a bank card); a payment that arrives for a
cancelled order refunded automatically. Every payment and refund is in the ledger once."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]
from sqlalchemy import select

from gonghui import clock, tasks
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay
from gonghui.mall import refunds
from gonghui.mall.sweep import sweep
from gonghui.orgs.models import Role
from tests.activities.conftest import Member, MemberFactory, staff_headers
from tests.fixtures import StaffFactory, Tree
from tests.mall.conftest import (
    budget_spent,
    checkout,
    faults,
    ledger,
    link_wechat,
    order,
    pay,
    product,
    sale,
    stock,
    voucher,
)

SIM = "/_sim/wechatpay/_control"


def _paid_order(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> tuple[Member, dict[str, Any], int, int]:
    """A member's paid order of one 50.00 unit, with a 10.00 subsidy and a 10.00 voucher
    (30.00 paid); the member, the order, its SKU and the sale."""
    item = product(api, operator, tree.province, price_cents=5000, stock=5)
    sku = item["skus"][0]["id"]
    activity = sale(api, operator, tree.province)
    member = make_member(tree.district_a1)
    link_wechat(member)
    ticket = voucher(member)
    placed = checkout(
        api, member, items=[{"sku_id": sku, "quantity": 1}], activity_id=activity, voucher_id=ticket
    ).json()
    assert placed["total_cents"] == 3000
    pay(api, member, placed["id"])
    return member, placed, sku, activity


def _approved(
    api: httpx.Client, member: Member, operator: dict[str, str], order_id: int
) -> dict[str, Any]:
    """The member asks for a refund, an operator approves it and it is sent."""
    asked = api.post(
        f"/api/v1/me/mall/orders/{order_id}/refund",
        json={"reason": "不想要了"},
        headers=member.headers,
    )
    assert asked.status_code == 200, asked.text
    approved = api.post(f"/api/v1/mall/orders/{order_id}/refund/approve", headers=operator)
    assert approved.status_code == 200, approved.text
    assert tasks.run_due() >= 1  # mall.send_refund
    return _seen(api, operator, order_id)


def _seen(api: httpx.Client, operator: dict[str, str], order_id: int) -> dict[str, Any]:
    resp = api.get(f"/api/v1/mall/orders/{order_id}", headers=operator)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _end(api: httpx.Client, out_refund_no: str, ending: str, **delivery: bool) -> dict[str, Any]:
    resp = api.post(f"{SIM}/refunds/{out_refund_no}/{ending}", json=delivery)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _refund_at_wechatpay(out_refund_no: str) -> str | None:
    """The refund's status as WeChat Pay has it; None if it was never made."""
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    try:
        found = client.call("GET", f"/v3/refund/domestic/refunds/{out_refund_no}")
    except wechatpay.WechatPayRefused:
        return None
    return str(found["status"])


def _audited(order_id: int) -> list[tuple[str, dict[str, Any] | None]]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.details)
            .where(AuditEntry.subject_type == "mall_order", AuditEntry.subject_id == str(order_id))
            .order_by(AuditEntry.id)
        )
        return [(a, d) for a, d in rows]


def _payments(membership_id: int) -> list[tuple[str, str, int, str]]:
    return [row for row in ledger(membership_id) if row[0] == "payment"]


def test_a_closed_refund_is_shown_failed_and_a_retry_refunds_once_under_a_new_number(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    member, placed, sku, activity = _paid_order(api, tree, operator, make_member)
    first = _approved(api, member, operator, placed["id"])
    assert (first["state"], first["refund_attempt"]) == ("refunding", 1)
    assert first["out_refund_no"] == f"{placed['out_trade_no']}R"

    closed = _end(api, first["out_refund_no"], "close", duplicate=True)
    assert closed["statuses"] == [204, 204]
    failed = _seen(api, operator, placed["id"])
    assert (failed["state"], failed["refund_failure"], failed["refund_error"]) == (
        "refund_failed",
        "closed",
        "CLOSED: 支付用户零钱",
    )
    assert order(api, member, placed["id"])["state"] == "refund_failed"
    assert stock(sku) == (4, 1)  # still held: nothing was refunded

    # Another city's operator does not see the order, a member may not retry it.
    elsewhere = make_staff(tree.city_b, Role.OPERATOR).headers
    hidden = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=elsewhere)
    assert hidden.status_code == 404
    by_member = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=member.headers)
    assert by_member.status_code in (401, 403)
    assert _seen(api, operator, placed["id"])["state"] == "refund_failed"

    retried = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=operator)
    assert retried.status_code == 200, retried.text
    second = retried.json()
    assert (second["state"], second["refund_attempt"], second["refund_failure"]) == (
        "refunding",
        2,
        None,
    )
    assert second["out_refund_no"] == f"{placed['out_trade_no']}R2"
    again = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=operator)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "mall.bad_state")
    assert tasks.run_due() >= 1
    assert _end(api, second["out_refund_no"], "succeed", duplicate=True)["statuses"] == [204, 204]
    # The first attempt's closing, told again late, changes nothing.
    assert _end(api, first["out_refund_no"], "close") == {"ended": False}

    done = _seen(api, operator, placed["id"])
    assert (done["state"], done["refund_account"]) == ("refunded", "支付用户零钱")
    assert stock(sku) == (5, 0)
    assert budget_spent(activity) == 0
    assert _payments(member.membership_id) == [
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
    ]
    assert ledger(member.membership_id)[-2:] == [
        ("subsidy", "revoke", -1000, "mall.refund"),
        ("voucher", "issue", 1000, "mall.refund"),
    ]
    assert (
        _refund_at_wechatpay(first["out_refund_no"]),
        _refund_at_wechatpay(done["out_refund_no"]),
    ) == (
        "CLOSED",
        "SUCCESS",
    )
    assert _audited(placed["id"]) == [
        ("mall.approve_refund", None),
        (
            "mall.retry_refund",
            {"after": "closed", "attempt": 2, "out_refund_no": f"{placed['out_trade_no']}R2"},
        ),
    ]


def test_an_abnormal_refund_is_not_sent_again_but_paid_to_the_members_debit_card(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    member, placed, sku, _ = _paid_order(api, tree, operator, make_member)
    sent = _approved(api, member, operator, placed["id"])
    number = sent["out_refund_no"]
    # REFUND.ABNORMAL once now, and once more held back until after the card is applied.
    assert _end(api, number, "abnormal")["statuses"] == [204]
    failed = _seen(api, operator, placed["id"])
    assert (failed["state"], failed["refund_failure"]) == ("refund_failed", "abnormal")

    retried = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=operator)
    assert (retried.status_code, retried.json()["error"]["code"]) == (409, "mall.refund_abnormal")
    no_card = api.post(
        f"/api/v1/mall/orders/{placed['id']}/refund/abnormal",
        json={"type": "USER_BANK_CARD", "bank_type": "ICBC_DEBIT"},
        headers=operator,
    )
    assert no_card.status_code == 422
    assert _seen(api, operator, placed["id"])["state"] == "refund_failed"

    card = {
        "type": "USER_BANK_CARD",
        "bank_type": "ICBC_DEBIT",
        "bank_account": "6222020200001234",
        "real_name": "张三",
    }
    applied = api.post(
        f"/api/v1/mall/orders/{placed['id']}/refund/abnormal", json=card, headers=operator
    )
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert (body["state"], body["abnormal_refund"], body["out_refund_no"]) == (
        "refunding",
        "USER_BANK_CARD",
        number,
    )
    twice = api.post(
        f"/api/v1/mall/orders/{placed['id']}/refund/abnormal", json=card, headers=operator
    )
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "mall.bad_state")
    assert _refund_at_wechatpay(number) == "PROCESSING"

    assert _end(api, number, "succeed")["statuses"] == [204]
    done = _seen(api, operator, placed["id"])
    assert (done["state"], done["refund_account"]) == ("refunded", "ICBC_DEBIT借记卡1234")
    assert stock(sku) == (5, 0)
    assert _payments(member.membership_id) == [
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
    ]
    actions = _audited(placed["id"])
    assert actions[-1] == (
        "mall.apply_abnormal_refund",
        {"type": "USER_BANK_CARD", "out_refund_no": number, "bank_type": "ICBC_DEBIT"},
    )
    assert "6222020200001234" not in str(actions)  # the card is never kept


def test_an_abnormal_refund_found_by_asking_is_paid_to_the_sellers_account_despite_a_late_notice(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    member, placed, _, _ = _paid_order(api, tree, operator, make_member)
    number = _approved(api, member, operator, placed["id"])["out_refund_no"]
    assert _end(api, number, "abnormal", hold=True)["statuses"] is None  # the notice is late
    clock.advance(timedelta(minutes=2))
    assert sweep()["late_refunds"] == 1
    failed = _seen(api, operator, placed["id"])
    assert (failed["state"], failed["refund_failure"]) == ("refund_failed", "abnormal")

    applied = api.post(
        f"/api/v1/mall/orders/{placed['id']}/refund/abnormal",
        json={"type": "MERCHANT_BANK_CARD"},
        headers=operator,
    )
    assert applied.status_code == 200, applied.text
    assert applied.json()["state"] == "refunding"
    # The REFUND.ABNORMAL sent before the application arrives now: the order stays on.
    assert api.post(f"{SIM}/notifications/release").json()["statuses"] == [204]
    assert _seen(api, operator, placed["id"])["state"] == "refunding"
    assert sweep()["late_refunds"] == 1  # asked: still processing
    assert _seen(api, operator, placed["id"])["state"] == "refunding"

    assert _end(api, number, "succeed")["statuses"] == [204]
    done = _seen(api, operator, placed["id"])
    assert (done["state"], done["abnormal_refund"], done["refund_account"]) == (
        "refunded",
        "MERCHANT_BANK_CARD",
        "商户基本账户",
    )
    assert _payments(member.membership_id) == [
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
    ]


def test_a_refund_refused_for_the_merchants_balance_waits_for_a_retry_and_refunds_once(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    member, placed, sku, _ = _paid_order(api, tree, operator, make_member)
    assert api.post(f"{SIM}/balance", json={"cents": 1000}).status_code == 200
    refused = _approved(api, member, operator, placed["id"])
    assert (refused["state"], refused["refund_failure"], refused["refund_error"]) == (
        "refund_failed",
        "refused",
        "NOT_ENOUGH: 基本账户余额不足，请充值后重新发起",
    )
    assert _refund_at_wechatpay(refused["out_refund_no"]) is None
    mine = order(api, member, placed["id"])  # the member sees it is not through, not why
    assert (mine["state"], mine["refund_failure"], mine["refund_error"]) == (
        "refund_failed",
        "refused",
        None,
    )

    # Retried while the balance is still short: refused again, under its own number.
    assert (
        api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=operator).json()[
            "out_refund_no"
        ]
        == f"{placed['out_trade_no']}R2"
    )
    assert tasks.run_due() >= 1
    short = _seen(api, operator, placed["id"])
    assert (short["state"], short["refund_attempt"], short["refund_failure"]) == (
        "refund_failed",
        2,
        "refused",
    )

    assert api.post(f"{SIM}/balance", json={"cents": None}).status_code == 200
    third = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=operator).json()
    assert (third["state"], third["out_refund_no"]) == ("refunding", f"{placed['out_trade_no']}R3")
    assert tasks.run_due() >= 1
    assert _end(api, third["out_refund_no"], "succeed")["statuses"] == [204]
    assert _seen(api, operator, placed["id"])["state"] == "refunded"
    assert stock(sku) == (5, 0)
    assert _payments(member.membership_id) == [
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
    ]
    assert [a for a, _ in _audited(placed["id"])] == [
        "mall.approve_refund",
        "mall.retry_refund",
        "mall.retry_refund",
    ]


def test_operators_retrying_one_failed_refund_at_once_refund_it_once(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    member, placed, _, _ = _paid_order(api, tree, operator, make_member)
    first = _approved(api, member, operator, placed["id"])
    _end(api, first["out_refund_no"], "close")
    assert _seen(api, operator, placed["id"])["state"] == "refund_failed"

    def retry(_: int) -> int:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            return client.post(
                f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=operator
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(retry, range(8)))
    assert sorted(answers) == [200] + [409] * 7
    assert tasks.run_due() >= 1
    assert tasks.run_due() == 0  # one refund request, sent once
    number = f"{placed['out_trade_no']}R2"
    assert _seen(api, operator, placed["id"])["out_refund_no"] == number
    assert [_refund_at_wechatpay(f"{placed['out_trade_no']}R{n}") for n in (2, 3)] == [
        "PROCESSING",
        None,
    ]
    _end(api, number, "succeed")
    assert _seen(api, operator, placed["id"])["state"] == "refunded"
    assert _payments(member.membership_id) == [
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
    ]
    assert [a for a, _ in _audited(placed["id"])].count("mall.retry_refund") == 1


@pytest.mark.parametrize("closed_by", ["member", "timeout"])
def test_a_payment_that_arrives_after_the_order_was_cancelled_is_refunded_automatically_once(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    closed_by: str,
) -> None:
    province_staff = make_staff(tree.province, Role.OPERATOR)
    operator = province_staff.headers
    item = product(api, operator, tree.province, price_cents=5000, stock=3)
    sku = item["skus"][0]["id"]
    activity = sale(api, operator, tree.province)
    member = make_member(tree.district_a1)
    link_wechat(member)
    ticket = voucher(member)
    placed = checkout(
        api, member, items=[{"sku_id": sku, "quantity": 1}], activity_id=activity, voucher_id=ticket
    ).json()
    params = api.post(f"/api/v1/me/mall/orders/{placed['id']}/payment", headers=member.headers)
    assert params.status_code == 200, params.text
    if closed_by == "member":
        cancelled = api.post(
            f"/api/v1/me/mall/orders/{placed['id']}/cancel", headers=member.headers
        )
        assert cancelled.json()["state"] == "cancelled"
    else:
        clock.advance(timedelta(minutes=31))
        assert sweep()["closed"] == 1
    assert (stock(sku), budget_spent(activity)) == ((3, 0), 0)

    # The member's payment raced the close at WeChat Pay and won; told twice.
    paid = api.post(
        f"{SIM}/transactions/{placed['out_trade_no']}/pay",
        json={"after_close": True, "duplicate": True},
    )
    assert paid.json()["statuses"] == [204, 204]
    seen = order(api, member, placed["id"])
    assert (seen["state"], seen["refund_from"], seen["out_refund_no"]) == (
        "refunding",
        "cancelled",
        f"{placed['out_trade_no']}R",
    )
    assert seen["cancelled_at"] is not None
    assert seen["paid_at"] is not None
    # Refunding, it is not a sale.
    report = api.get("/api/v1/mall/reports/sales.xlsx", headers=staff_headers(province_staff))
    assert report.status_code == 200, report.text
    book = load_workbook(io.BytesIO(report.content), read_only=True)
    assert list(book["按帮扶地区"].iter_rows(min_row=2, values_only=True)) == []
    assert tasks.run_due() >= 1  # mall.send_refund
    assert _end(api, seen["out_refund_no"], "succeed", duplicate=True)["statuses"] == [204, 204]

    assert order(api, member, placed["id"])["state"] == "refunded"
    # Given back once, at the cancel; the refund gives nothing back again.
    assert (stock(sku), budget_spent(activity)) == ((3, 0), 0)
    wallet = api.get("/api/v1/me/wallet", headers=member.headers).json()
    assert [v["status"] for v in wallet["vouchers"]] == ["issued"]
    source = "mall.cancel" if closed_by == "member" else "mall.timeout"
    assert ledger(member.membership_id) == [
        ("voucher", "issue", 1000, "test"),
        ("subsidy", "issue", 1000, "mall.checkout"),
        ("voucher", "redeem", -1000, "mall.checkout"),
        ("subsidy", "revoke", -1000, source),
        ("voucher", "issue", 1000, source),
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
    ]


def test_a_refund_wechatpay_never_answered_is_sent_again_under_the_same_number(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    member, placed, _, _ = _paid_order(api, tree, operator, make_member)
    # WeChat Pay takes the refund but its answer is lost; the task then runs out of
    # attempts (played here by its dead-letter hook).
    faults(api, "lost")
    sent = _approved(api, member, operator, placed["id"])
    number = sent["out_refund_no"]
    assert (sent["state"], _refund_at_wechatpay(number)) == ("refunding", "PROCESSING")
    refunds._dead({"order_id": placed["id"], "out_refund_no": number}, "WeChat Pay: HTTP 500")
    failed = _seen(api, operator, placed["id"])
    assert (failed["state"], failed["refund_failure"]) == ("refund_failed", "unanswered")

    retried = api.post(f"/api/v1/mall/orders/{placed['id']}/refund/retry", headers=operator)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["refund_attempt"], retried.json()["out_refund_no"]) == (1, number)
    assert tasks.run_due() >= 1  # WeChat Pay answers the refund it holds
    _end(api, number, "succeed")
    assert _seen(api, operator, placed["id"])["state"] == "refunded"
    assert _refund_at_wechatpay(f"{placed['out_trade_no']}R2") is None
    assert _payments(member.membership_id) == [
        ("payment", "pay", 3000, "wechatpay.transaction_success"),
        ("payment", "refund", -3000, "wechatpay.refund_success"),
    ]

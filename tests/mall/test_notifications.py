"""Payment notifications that are not as WeChat Pay sent them are refused and change
nothing; one that does not match our order pays nothing; a replay pays once."""

from __future__ import annotations

import time
from typing import Any

import httpx

from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.mall.models import Order
from tests.activities.conftest import MemberFactory
from tests.fixtures import Tree
from tests.mall.conftest import checkout, ledger, link_wechat, order, product

NOTIFY = "/api/v1/payments/wechatpay/notifications"


def _transaction(placed: dict[str, Any], **changes: Any) -> dict[str, Any]:
    resource = {
        "appid": "wx_sim_mini",
        "mchid": sim.development_merchant().mchid,
        "out_trade_no": placed["out_trade_no"],
        "transaction_id": "4200000000000000000000000001",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "success_time": "2026-12-04T10:00:00+08:00",
        "payer": {"openid": "o-sim"},
        "amount": {"total": placed["total_cents"], "payer_total": placed["total_cents"]},
    }
    resource.update(changes)
    return resource


def test_forged_stale_tampered_and_mismatched_notifications_pay_nothing(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    item = product(api, operator, tree.province)
    member = make_member(tree.district_a1)
    link_wechat(member)
    placed = checkout(api, member, items=[{"sku_id": item["skus"][0]["id"], "quantity": 1}]).json()

    body, headers = sim.notification(
        "TRANSACTION.SUCCESS", _transaction(placed), summary="支付成功"
    )
    stale_body, stale_headers = sim.notification(
        "TRANSACTION.SUCCESS",
        _transaction(placed),
        summary="支付成功",
        timestamp=int(time.time()) - 3600,
    )
    tampered = bytearray(body)
    at = body.index(b'"ciphertext":"') + len(b'"ciphertext":"') + 5
    tampered[at] = ord("A") if tampered[at] != ord("A") else ord("B")
    forged = [
        (body, {**headers, "Wechatpay-Serial": "PUB_KEY_ID_UNKNOWN"}),
        (body, {**headers, "Wechatpay-Signature": headers["Wechatpay-Signature"][::-1]}),
        (stale_body, stale_headers),
        (bytes(tampered), headers),  # the signature no longer matches the body either
    ]
    for forged_body, forged_headers in forged:
        resp = api.post(NOTIFY, content=forged_body, headers=forged_headers)
        assert (resp.status_code, resp.json()["error"]["code"]) == (401, "wechatpay.bad_signature")
    assert order(api, member, placed["id"])["state"] == "unpaid"

    # Signed by WeChat Pay's key but not our order's amount: acknowledged, nothing paid.
    cheap, cheap_headers = sim.notification(
        "TRANSACTION.SUCCESS",
        _transaction(placed, amount={"total": 1, "payer_total": 1}),
        summary="支付成功",
    )
    assert api.post(NOTIFY, content=cheap, headers=cheap_headers).status_code == 204
    assert order(api, member, placed["id"])["state"] == "unpaid"
    with unit_of_work(read_only=True) as session:
        row = session.get(Order, placed["id"])
        assert row is not None
        assert row.last_error is not None
    assert ledger(member.membership_id) == []

    # The genuine one pays, once, however often it is replayed.
    for _ in range(3):
        assert api.post(NOTIFY, content=body, headers=headers).status_code == 204
    assert order(api, member, placed["id"])["state"] == "paid"
    assert ledger(member.membership_id) == [
        ("payment", "pay", 5000, "wechatpay.transaction_success")
    ]

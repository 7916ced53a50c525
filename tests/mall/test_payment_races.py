"""A close that races the order's placing at WeChat Pay: whichever lands first, the order
ends cancelled here and closed there, so no payment can follow (none to refund later)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from gonghui.integrations import wechatpay
from gonghui.mall import payment
from gonghui.mall.models import OrderState
from tests.activities.conftest import MemberFactory
from tests.fixtures import Tree
from tests.mall.conftest import checkout, link_wechat, order, product, stock

SIM = "/_sim/wechatpay/_control"


def _placed_order(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> tuple[Any, dict[str, Any], int]:
    item = product(api, operator, tree.province, stock=3)
    member = make_member(tree.district_a1)
    link_wechat(member)
    sku = item["skus"][0]["id"]
    placed = checkout(api, member, items=[{"sku_id": sku, "quantity": 1}]).json()
    assert stock(sku)[0] == 2
    return member, placed, sku


def _state_at_wechatpay(out_trade_no: str) -> str:
    found = payment.query(out_trade_no)
    assert found is not None
    return str(found["trade_state"])


def test_an_order_cancelled_while_it_is_being_placed_is_closed_at_wechatpay(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, placed, sku = _placed_order(api, tree, operator, make_member)
    call = wechatpay.WechatPayClient.call

    def cancel_meanwhile(self: wechatpay.WechatPayClient, method: str, path: str, *a: Any) -> Any:
        answer = call(self, method, path, *a)
        if path == "/v3/pay/transactions/jsapi":
            # The member cancels on another device while the order is being placed.
            payment.cancel(membership_id=member.membership_id, order_id=placed["id"])
        return answer

    monkeypatch.setattr(wechatpay.WechatPayClient, "call", cancel_meanwhile)
    refused = api.post(f"/api/v1/me/mall/orders/{placed['id']}/payment", headers=member.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["details"] == {"state": "cancelled"}
    monkeypatch.undo()

    assert order(api, member, placed["id"])["state"] == "cancelled"
    assert stock(sku)[0] == 3
    assert _state_at_wechatpay(placed["out_trade_no"]) == "CLOSED"
    paid = api.post(f"{SIM}/transactions/{placed['out_trade_no']}/pay", json={})
    assert paid.json()["paid"] is False, paid.text


def test_an_order_placed_while_it_is_being_closed_is_closed_at_wechatpay_too(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member, placed, sku = _placed_order(api, tree, operator, make_member)
    unit_of_work = payment.unit_of_work
    reads: list[bool] = []
    params: list[dict[str, str]] = []

    @contextmanager
    def place_after_the_first_read(*a: Any, **kw: Any) -> Iterator[Any]:
        with unit_of_work(*a, **kw) as session:
            yield session
        if kw.get("read_only") and not reads:
            reads.append(True)
            # The close read it unplaced; the member's payment page places it now.
            params.append(
                payment.prepare_payment(membership_id=member.membership_id, order_id=placed["id"])
            )

    monkeypatch.setattr(payment, "unit_of_work", place_after_the_first_read)
    state = payment.close_unpaid(placed["id"], source="mall.timeout")
    monkeypatch.undo()

    assert params  # placed in between, as the test means
    assert state == OrderState.CANCELLED
    assert order(api, member, placed["id"])["state"] == "cancelled"
    assert stock(sku)[0] == 3
    assert _state_at_wechatpay(placed["out_trade_no"]) == "CLOSED"
    paid = api.post(f"{SIM}/transactions/{placed['out_trade_no']}/pay", json={})
    assert paid.json()["paid"] is False, paid.text

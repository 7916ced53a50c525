"""A paid mall order reaches the webhooks of the clients above the selling union, once
however often WeChat Pay tells us, naming the member only by the client's ``sub``."""

from __future__ import annotations

import httpx
import pytest

from gonghui import tasks
from gonghui.openplatform.identity import pairwise_subject
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory
from tests.fixtures import StaffFactory, Tree
from tests.mall.conftest import checkout, link_wechat, product, sale
from tests.receiver import running_receiver

# The story counts the webhooks' tasks alone, not members' notifications.
pytestmark = pytest.mark.usefixtures("loopback_allowed", "quiet_notifications")


def client_listening(
    api: httpx.Client, make_staff: StaffFactory, org_id: int, url: str
) -> tuple[str, str]:
    """A client of ``org_id`` with an endpoint for paid orders: its client_id and secret."""
    developer = make_staff(org_id, Role.DEVELOPER)
    registered = api.post(
        "/api/v1/oauth-clients",
        json={
            "org_id": org_id,
            "name": "助农对账",
            "kind": "confidential",
            "redirect_uris": ["https://books.example.com/cb"],
            "scope": "openid",
        },
        headers=developer.headers,
    ).json()
    hook = api.post(
        f"/api/v1/oauth-clients/{registered['id']}/webhooks",
        json={"url": url, "events": ["order.paid"]},
        headers=developer.headers,
    )
    assert hook.status_code == 201, hook.text
    return registered["client_id"], hook.json()["secret"]


def test_a_paid_order_is_told_once_to_the_clients_above_the_selling_union(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    operator = make_staff(tree.province, Role.OPERATOR).headers
    item = product(api, operator, tree.province, price_cents=5000, stock=10)
    activity = sale(api, operator, tree.province, percent=20, cap_cents=3000)
    member = make_member(tree.district_a1)
    link_wechat(member)
    with running_receiver() as province_rx, running_receiver() as city_rx:
        client_id, _ = client_listening(api, make_staff, tree.province, province_rx.url)
        client_listening(api, make_staff, tree.city_a, city_rx.url)
        api.put(
            "/api/v1/me/mall/cart/items",
            json={"sku_id": item["skus"][0]["id"], "quantity": 1},
            headers=member.headers,
        )
        placed = checkout(api, member, activity_id=activity)
        assert placed.status_code == 201, placed.text
        order = placed.json()
        params = api.post(f"/api/v1/me/mall/orders/{order['id']}/payment", headers=member.headers)
        assert params.status_code == 200, params.text
        paid = api.post(
            f"/_sim/wechatpay/_control/transactions/{order['out_trade_no']}/pay",
            json={"duplicate": True},
        )
        assert paid.json()["statuses"] == [204, 204]
        tasks.run_due()
        tasks.run_due()
    [told] = province_rx.requests
    data = told.json["data"]
    assert told.json["type"] == "order.paid"
    assert (data["order_id"], data["activity_id"], data["total_cents"]) == (
        order["id"],
        activity,
        4000,
    )
    assert data["sub"] == pairwise_subject(client_id, member.user_id)
    assert "张三" not in told.body.decode()  # the delivery address stays with the mall
    # The sale is the province's: a city's client below it hears nothing of it.
    assert city_rx.requests == []

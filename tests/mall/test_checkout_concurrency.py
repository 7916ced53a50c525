"""200 members check out the last 150 units of one SKU at once, under a subsidy budget
for 100 orders: no oversell, no budget overrun, and the books agree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from gonghui.benefits.models import LedgerEntry, LedgerKind
from gonghui.db import unit_of_work
from gonghui.mall.models import Order
from tests.activities.conftest import Member, MemberFactory
from tests.fixtures import Tree
from tests.mall.conftest import ADDRESS, budget_spent, link_wechat, product, sale, stock


def test_two_hundred_concurrent_checkouts_never_oversell_or_overrun_the_budget(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    item = product(api, operator, tree.province, price_cents=5000, stock=150)
    sku = item["skus"][0]["id"]
    activity = sale(api, operator, tree.province, percent=20, budget_cents=100 * 1000)
    members = [make_member(tree.district_a1) for _ in range(200)]
    for member in members:
        link_wechat(member)

    def buy(member: Member) -> tuple[int, str]:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            resp = client.post(
                "/api/v1/me/mall/orders",
                json={
                    "items": [{"sku_id": sku, "quantity": 1}],
                    "activity_id": activity,
                    "address": ADDRESS,
                },
                headers=member.headers,
            )
            body = resp.json()
            return resp.status_code, body.get("state") or body["error"]["code"]

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(buy, members))
    assert answers.count((201, "unpaid")) == 150
    assert answers.count((409, "mall.out_of_stock")) == 50
    assert stock(sku) == (0, 150)
    with unit_of_work(read_only=True) as session:
        orders = session.execute(select(Order.subsidy_cents, Order.total_cents)).all()
        subsidy_ledger = session.scalar(
            select(func.sum(LedgerEntry.amount)).where(LedgerEntry.kind == LedgerKind.SUBSIDY)
        )
    assert len(orders) == 150
    assert sorted({s for s, _ in orders}) == [0, 1000]
    assert sum(s for s, _ in orders) == budget_spent(activity) == subsidy_ledger == 100_000
    assert all(s + t == 5000 for s, t in orders)

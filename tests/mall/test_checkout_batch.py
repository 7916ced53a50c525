"""A batch of checkouts, as the hot writer runs it, gives every checkout the outcome it would
have had checked out alone, one after another in batch order (a member's second checkout
in the batch after everyone's first), and leaves the same stock, budget, caps, vouchers,
ledger, orders and stored idempotent answers behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hotwrite
from gonghui.accounts.principal import MemberInfo
from gonghui.activities.models import Counter
from gonghui.benefits.models import Budget, LedgerEntry, Voucher
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.idempotency import IdempotentResponse
from gonghui.mall.checkout import checkout, checkout_many
from gonghui.mall.models import Order, OrderLine, Sku
from tests.activities.conftest import MemberFactory, member_info, one_by_one, stored_keys
from tests.fixtures import Tree
from tests.mall.conftest import ADDRESS, link_wechat, product, sale, voucher


def _call(
    info: MemberInfo,
    items: list[tuple[int, int]],
    *,
    activity_id: int | None = None,
    voucher_id: int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    return {
        "member": info,
        "items": [{"sku_id": s, "quantity": q} for s, q in items],
        "activity_id": activity_id,
        "voucher_id": voucher_id,
        "address": ADDRESS,
        "idempotency_key": key,
    }


def _seen(outcome: Any) -> Any:
    """What a member sees of an answer, without ids, order numbers and times (which differ
    between the two runs)."""
    if isinstance(outcome, DomainError):
        return outcome.code
    hidden = ("id", "out_trade_no", "created_at", "due_at")
    return {k: v for k, v in outcome.items() if k not in hidden}


def _state(session: Session) -> dict[str, Any]:
    rows = session.execute
    return {
        "stock": sorted(rows(select(Sku.id, Sku.stock, Sku.sold)).all()),
        "budget": sorted(rows(select(Budget.activity_id, Budget.cents_spent)).all()),
        "caps": sorted(
            rows(select(Counter.activity_id, Counter.membership_id, Counter.scope, Counter.used))
        ),
        "vouchers": sorted(rows(select(Voucher.id, Voucher.status)).all()),
        "ledger": sorted(
            rows(select(LedgerEntry.membership_id, LedgerEntry.kind, LedgerEntry.amount)).all()
        ),
        "orders": sorted(
            rows(
                select(
                    Order.membership_id,
                    Order.org_id,
                    Order.activity_id,
                    Order.voucher_id,
                    Order.goods_cents,
                    Order.subsidy_cents,
                    Order.voucher_cents,
                    Order.total_cents,
                    Order.state,
                    Order.openid,
                )
            ).all()
        ),
        "lines": sorted(
            rows(
                select(Order.membership_id, OrderLine.sku_id, OrderLine.quantity).join(
                    Order, Order.id == OrderLine.order_id
                )
            ).all()
        ),
        "keys": stored_keys(session),
    }


@pytest.mark.parametrize("first_try", [False, True])
def test_a_batch_checks_out_as_the_same_checkouts_one_by_one(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
    first_try: bool,
) -> None:
    # A writer's first try (on PostgreSQL: stock and budget read unlocked, taken at the end).
    monkeypatch.setattr(hotwrite, "first_try", lambda session: first_try)
    tea = product(api, operator, tree.province, price_cents=5000, stock=3)["skus"][0]["id"]
    rice = product(api, operator, tree.province, price_cents=4000, stock=9, name="大米")
    rice_sku = rice["skus"][0]["id"]
    honey = product(api, operator, tree.city_a, price_cents=3000, stock=9, name="蜂蜜")
    honey_sku = honey["skus"][0]["id"]
    # 20 % of each order, at most 3,000 cents a member a month, from a budget of 2,500.
    sale_id = sale(api, operator, tree.province, percent=20, cap_cents=3000, budget_cents=2500)
    m = [make_member(tree.district_a1) for _ in range(9)]
    for member in m[:8]:
        link_wechat(member)  # m[8] has not
    outsider = make_member(tree.city_b)
    link_wechat(outsider)
    coupon = voucher(m[6], value_cents=1000, threshold_cents=3000)
    with unit_of_work() as session:
        info = [member_info(session, member) for member in m]
        stranger = member_info(session, outsider)
        session.add(
            IdempotentResponse(
                membership_id=info[3].membership_id,
                key="x",
                operation="benefits.claim:1",
                body={"id": 1},
            )
        )
    calls = [
        _call(info[0], [(tea, 1)], activity_id=sale_id, key="a"),  # 1,000 off (of 2,500)
        _call(info[1], [(tea, 1)], activity_id=sale_id),  # 1,000 off (2,000 of 2,500)
        _call(info[0], [(tea, 1)], activity_id=sale_id, key="a"),  # a retry: the same order
        _call(info[2], [(tea, 2)], activity_id=sale_id),  # out of stock: one unit is left
        _call(info[2], [(tea, 1)], activity_id=sale_id),  # round 2: the last unit, no budget
        _call(info[3], [(rice, 1)], key="x"),  # the key was used for something else
        _call(info[4], [(rice_sku, 1), (honey_sku, 1)]),  # two sellers
        _call(info[5], [(999_999, 1)], activity_id=sale_id),  # no such item
        _call(info[8], [(rice_sku, 1)]),  # WeChat not linked
        _call(stranger, [(honey_sku, 1)]),  # not sold in city B
        _call(info[6], [(rice_sku, 1)], activity_id=sale_id, voucher_id=coupon),  # the last 500
        _call(info[6], [(rice_sku, 1)], voucher_id=coupon),  # the voucher is spent already
        _call(info[7], [(honey_sku, 2)], activity_id=999_999),  # no such sale
        _call(info[7], [(honey_sku, 2), (honey_sku, 1)], key="b"),  # 3 units, one line
        _call(info[1], [(tea, 1)]),  # the stock is gone by then
    ]
    with unit_of_work() as session:
        batch = session.begin_nested()
        batched = checkout_many(session, calls)
        after_batch = _state(session)
        batch.rollback()
        alone = one_by_one(session, checkout, calls)
        after_alone = _state(session)
        session.rollback()

    seen = [_seen(outcome) for outcome in batched]
    assert seen == [_seen(outcome) for outcome in alone]
    assert after_batch == after_alone
    assert [
        s if isinstance(s, str) else (s["subsidy_cents"], s["voucher_cents"]) for s in seen
    ] == [
        (1000, 0),
        (1000, 0),
        (1000, 0),
        "mall.out_of_stock",
        (0, 0),
        "activities.idempotency_key_reused",
        "mall.one_seller_per_order",
        "mall.off_shelf",
        "mall.wechat_not_linked",
        "mall.off_shelf",
        (500, 1000),
        "benefits.voucher_not_redeemable",
        "activity.not_found",
        (0, 0),
        "mall.out_of_stock",
    ]
    assert batched[2] == batched[0]  # the retry is the stored answer, order id and all
    assert seen[13]["lines"] == [
        {
            "sku_id": honey_sku,
            "product_id": honey["id"],
            "product_name": "蜂蜜",
            "sku_name": "500克",
            "origin_region": "贵州省黔东南州",
            "price_cents": 3000,
            "quantity": 3,
            "amount_cents": 9000,
        }
    ]
    assert seen[0]["address"] == {
        "name": "张*",
        "phone": "138****8000",
        "address": "广东省广州市***",
    }
    assert (tea, 0, 3) in after_batch["stock"]
    assert (rice_sku, 8, 1) in after_batch["stock"]
    assert (honey_sku, 6, 3) in after_batch["stock"]
    assert (sale_id, 2500) in after_batch["budget"]
    assert len(after_batch["orders"]) == 5
    assert all(goods - s - v == t for *_, goods, s, v, t, _, _ in after_batch["orders"])
    keys = after_batch["keys"]
    assert (info[0].membership_id, "a", "mall.checkout", True) in keys
    assert (info[7].membership_id, "b", "mall.checkout", True) in keys


def test_a_refused_checkout_in_a_batch_keeps_no_key_and_takes_nothing(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    tea = product(api, operator, tree.province, price_cents=5000, stock=1)["skus"][0]["id"]
    sale_id = sale(api, operator, tree.province, percent=20, budget_cents=10_000)
    first, second = make_member(tree.district_a1), make_member(tree.district_a1)
    for member in (first, second):
        link_wechat(member)
    with unit_of_work() as session:
        a, b = member_info(session, first), member_info(session, second)
        outcomes = checkout_many(
            session,
            [
                _call(a, [(tea, 1)], activity_id=sale_id, key="k"),
                _call(b, [(tea, 1)], activity_id=sale_id, key="k"),
            ],
        )
    assert isinstance(outcomes[0], dict)
    assert isinstance(outcomes[1], DomainError)
    assert outcomes[1].code == "mall.out_of_stock"
    with unit_of_work(read_only=True) as session:
        state = _state(session)
    assert state["keys"] == [(a.membership_id, "k", "mall.checkout", True)]
    assert state["budget"] == [(sale_id, 1000)]
    assert [o[0] for o in state["orders"]] == [a.membership_id]
    assert [c[1] for c in state["caps"]] == [a.membership_id]

"""The mall over HTTP through the WeChat Pay simulator: products built by an operator,
members with WeChat linked, a mall sale's subsidy, vouchers in the wallet."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui.benefits import service as benefits
from gonghui.benefits.models import Budget, LedgerEntry
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.mall.models import Sku
from gonghui.orgs.models import Role
from tests.activities.conftest import Member, MemberFactory, create_activity, create_member
from tests.activities.voucher_grab.conftest import faults, link_wechat
from tests.fixtures import StaffFactory, Tree

__all__ = ["faults", "link_wechat"]

ADDRESS = {"name": "张三", "phone": "13800138000", "address": "广东省广州市天河区软件路1号"}


@pytest.fixture(autouse=True)
def _simulator(api: httpx.Client) -> Iterator[None]:
    sim.reset()
    faults(api)
    yield
    sim.reset()


@pytest.fixture
def make_member() -> MemberFactory:
    return create_member


@pytest.fixture
def operator(tree: Tree, make_staff: StaffFactory) -> dict[str, str]:
    return make_staff(tree.province, Role.OPERATOR).headers


def product(
    api: httpx.Client,
    operator: dict[str, str],
    org_id: int,
    *,
    price_cents: int = 5000,
    stock: int = 10,
    region: str = "贵州省黔东南州",
    name: str = "高山茶叶",
) -> dict[str, Any]:
    body = {
        "org_id": org_id,
        "name": name,
        "origin_region": region,
        "skus": [{"name": "500克", "price_cents": price_cents, "stock": stock}],
        "on_shelf": True,
    }
    resp = api.post("/api/v1/mall/products", json=body, headers=operator)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


def sale(
    api: httpx.Client,
    operator: dict[str, str],
    org_id: int,
    *,
    percent: int = 20,
    cap_cents: int = 3000,
    budget_cents: int = 100_000,
) -> int:
    """A live mall sale: the union pays ``percent`` of the goods from ``budget_cents``."""
    activity = create_activity(
        api,
        operator,
        org_id,
        title="助农消费月",
        config={
            "kind": "mall",
            "mall": {"subsidy_percent": percent, "member_cap_cents_per_month": cap_cents},
        },
        budget_cents=budget_cents,
    )
    return int(activity["id"])


def voucher(member: Member, *, value_cents: int = 1000, threshold_cents: int = 5000) -> int:
    with unit_of_work() as session:
        (voucher_id,) = benefits.issue_vouchers(
            session,
            members=[member.membership_id],
            activity_id=None,
            name="十元券",
            value_cents=value_cents,
            threshold_cents=threshold_cents,
            valid_days=30,
            source="test",
        )
    return voucher_id


def checkout(api: httpx.Client, member: Member, **body: Any) -> httpx.Response:
    headers = {**member.headers, **body.pop("headers", {})}
    return api.post("/api/v1/me/mall/orders", json={"address": ADDRESS, **body}, headers=headers)


def order(api: httpx.Client, member: Member, order_id: int) -> dict[str, Any]:
    resp = api.get(f"/api/v1/me/mall/orders/{order_id}", headers=member.headers)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


def pay(api: httpx.Client, member: Member, order_id: int, **delivery: bool) -> dict[str, Any]:
    """The member asks for the payment parameters, then pays in WeChat (the simulator)."""
    params = api.post(f"/api/v1/me/mall/orders/{order_id}/payment", headers=member.headers)
    assert params.status_code == 200, params.text
    out_trade_no = order(api, member, order_id)["out_trade_no"]
    paid = api.post(f"/_sim/wechatpay/_control/transactions/{out_trade_no}/pay", json=delivery)
    assert paid.json()["paid"] is True, paid.text
    body: dict[str, Any] = paid.json()
    return body


def ledger(membership_id: int) -> list[tuple[str, str, int, str]]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(LedgerEntry.kind, LedgerEntry.action, LedgerEntry.amount, LedgerEntry.source)
            .where(LedgerEntry.membership_id == membership_id)
            .order_by(LedgerEntry.id)
        )
        return [(str(k), str(a), n, s) for k, a, n, s in rows]


def stock(sku_id: int) -> tuple[int, int]:
    with unit_of_work(read_only=True) as session:
        sku = session.get(Sku, sku_id)
        assert sku is not None
        return sku.stock, sku.sold


def budget_spent(activity_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        budget = session.get(Budget, activity_id)
        assert budget is not None
        return budget.cents_spent

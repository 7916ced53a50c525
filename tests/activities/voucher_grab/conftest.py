"""Voucher grabs over HTTP through the WeChat Pay simulator: a campaign, members with
WeChat linked, their claims, and what WeChat Pay and the ledger hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui import tasks
from gonghui.accounts.models import Identity, Provider
from gonghui.activities.voucher_grab.stocks import list_stocks
from gonghui.benefits.models import LedgerEntry
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.integrations.wechatpay import WechatPayClient, configured_merchant
from gonghui.orgs.models import Role
from tests.activities.conftest import Member, MemberFactory, create_activity
from tests.fixtures import StaffFactory, Tree


@pytest.fixture(autouse=True)
def _without_notifications(quiet_notifications: None) -> None:
    """The stories count the coupon sends' tasks and transactions alone; a coupon's arrival
    notifying its member is told in tests/notifications."""


@pytest.fixture(autouse=True)
def _simulator(api: httpx.Client) -> Iterator[None]:
    """A fresh simulator answering at once."""
    sim.reset()
    faults(api)
    yield
    sim.reset()


def faults(api: httpx.Client, *faults: str) -> None:
    resp = api.post(
        "/_sim/wechatpay/_control/faults", json={"faults": list(faults), "latency_ms": 0}
    )
    assert resp.status_code == 200, resp.text


def grab_config(
    max_coupons: int = 3, max_per_member: int = 1, max_per_org: int | None = None
) -> dict[str, Any]:
    rules: dict[str, Any] = {
        "stocks": [
            {
                "name": "十元消费券",
                "coupon_amount_cents": 1000,
                "threshold_cents": 5000,
                "max_coupons": max_coupons,
                "max_per_member": max_per_member,
            }
        ]
    }
    if max_per_org is not None:
        rules["max_per_org"] = max_per_org
    return {"kind": "voucher_grab", "voucher_grab": rules}


@pytest.fixture
def operator(tree: Tree, make_staff: StaffFactory) -> dict[str, str]:
    return make_staff(tree.province, Role.OPERATOR).headers


def grab(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    *,
    limits: dict[str, int] | None = None,
    **rules: int,
) -> tuple[int, int]:
    """A published voucher grab of the province (``limits``: the activity's per-member
    limits), its stock opened at WeChat Pay."""
    activity = create_activity(
        api, operator, tree.province, config=grab_config(**rules), title="消费券", **(limits or {})
    )
    assert tasks.run_due() >= 1  # vouchers.open_stock
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity["id"])
        return activity["id"], stock.id


def stocks(api: httpx.Client, activity_id: int, member: Member) -> list[dict[str, Any]]:
    resp = api.get(f"/api/v1/activities/{activity_id}/voucher-stocks", headers=member.headers)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def link_wechat(member: Member, openid: str | None = None) -> str:
    openid = openid or f"o-sim-{member.user_id}"
    with unit_of_work() as session:
        session.add(
            Identity(
                user_id=member.user_id,
                provider=Provider.WECHAT_MINI,
                app_id="wx_sim_mini",
                subject=openid,
            )
        )
    return openid


def claim(api: httpx.Client, activity_id: int, stock_id: int, member: Member) -> httpx.Response:
    return api.post(
        f"/api/v1/activities/{activity_id}/voucher-stocks/{stock_id}/claims",
        headers=member.headers,
    )


def claimants(
    api: httpx.Client,
    make_member: MemberFactory,
    org_id: int,
    activity_id: int,
    stock_id: int,
    n: int = 1,
) -> list[Member]:
    """``n`` members of an org, WeChat linked, each holding a claim of the stock."""
    members = [make_member(org_id) for _ in range(n)]
    for member in members:
        link_wechat(member)
        assert claim(api, activity_id, stock_id, member).status_code == 201
    return members


def my_claims(api: httpx.Client, member: Member) -> list[dict[str, Any]]:
    resp = api.get("/api/v1/me/voucher-claims", headers=member.headers)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def ledger(membership_id: int) -> list[tuple[str, int, str]]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(LedgerEntry.action, LedgerEntry.amount, LedgerEntry.source)
            .where(LedgerEntry.membership_id == membership_id)
            .order_by(LedgerEntry.id)
        )
        return [(str(a), n, s) for a, n, s in rows]


def wechat_stock(activity_id: int) -> dict[str, Any]:
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity_id)
        wechat_id = stock.wechat_stock_id
    client = WechatPayClient(configured_merchant())
    return client.call(
        "GET", f"/v3/marketing/favor/stocks/{wechat_id}?stock_creator_mchid={client.merchant.mchid}"
    )


def move_wechat_stock(activity_id: int, move: str) -> None:
    """Pause or restart the grab's stock at WeChat Pay, as its merchant may."""
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity_id)
        wechat_id = stock.wechat_stock_id
    client = WechatPayClient(configured_merchant())
    client.call(
        "POST",
        f"/v3/marketing/favor/stocks/{wechat_id}/{move}",
        {"stock_creator_mchid": client.merchant.mchid},
    )

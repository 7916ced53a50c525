"""A voucher grab end to end over HTTP, through the WeChat Pay simulator: the stocks open
at WeChat Pay after publishing, members claim within the stock and their limits, each
claim is committed first and its coupon sent after (once, even when WeChat Pay's answer
is lost), and a coupon spent comes back as COUPON.USE into the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gonghui import clock, tasks
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
def _simulator(api: httpx.Client) -> Iterator[None]:
    sim.reset()
    _faults(api)
    yield
    sim.reset()


def _faults(api: httpx.Client, *faults: str) -> None:
    resp = api.post(
        "/_sim/wechatpay/_control/faults", json={"faults": list(faults), "latency_ms": 0}
    )
    assert resp.status_code == 200, resp.text


def _config(max_coupons: int = 3, max_per_member: int = 1) -> dict[str, Any]:
    return {
        "kind": "voucher_grab",
        "voucher_grab": {
            "stocks": [
                {
                    "name": "十元消费券",
                    "coupon_amount_cents": 1000,
                    "threshold_cents": 5000,
                    "max_coupons": max_coupons,
                    "max_per_member": max_per_member,
                }
            ]
        },
    }


@pytest.fixture
def operator(tree: Tree, make_staff: StaffFactory) -> dict[str, str]:
    return make_staff(tree.province, Role.OPERATOR).headers


def _grab(
    api: httpx.Client, tree: Tree, operator: dict[str, str], **config: int
) -> tuple[int, int]:
    """A published voucher grab of the province, its stock opened at WeChat Pay."""
    activity = create_activity(
        api, operator, tree.province, config=_config(**config), title="消费券"
    )
    assert tasks.run_due() >= 1  # vouchers.open_stock
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity["id"])
        return activity["id"], stock.id


def _stocks(api: httpx.Client, activity_id: int, member: Member) -> list[dict[str, Any]]:
    resp = api.get(f"/api/v1/activities/{activity_id}/voucher-stocks", headers=member.headers)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def _link_wechat(member: Member, openid: str | None = None) -> str:
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


def _claim(api: httpx.Client, activity_id: int, stock_id: int, member: Member) -> httpx.Response:
    return api.post(
        f"/api/v1/activities/{activity_id}/voucher-stocks/{stock_id}/claims",
        headers=member.headers,
    )


def _my_claims(api: httpx.Client, member: Member) -> list[dict[str, Any]]:
    resp = api.get("/api/v1/me/voucher-claims", headers=member.headers)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def _ledger(membership_id: int) -> list[tuple[str, int, str]]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(LedgerEntry.action, LedgerEntry.amount, LedgerEntry.source)
            .where(LedgerEntry.membership_id == membership_id)
            .order_by(LedgerEntry.id)
        )
        return [(str(a), n, s) for a, n, s in rows]


def _wechat_stock(activity_id: int) -> dict[str, Any]:
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity_id)
        wechat_id = stock.wechat_stock_id
    client = WechatPayClient(configured_merchant())
    return client.call(
        "GET", f"/v3/marketing/favor/stocks/{wechat_id}?stock_creator_mchid={client.merchant.mchid}"
    )


def test_a_member_claims_a_coupon_receives_it_and_spends_it(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity = create_activity(api, operator, tree.province, config=_config(), title="消费券")
    member = make_member(tree.district_a1)
    stock = _stocks(api, activity["id"], member)[0]
    assert stock["status"] == "opening"  # not yet at WeChat Pay
    early = _claim(api, activity["id"], stock["id"], member)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "vouchers.stock_not_open")
    assert tasks.run_due() >= 1
    assert _stocks(api, activity["id"], member)[0]["status"] == "running"
    assert _wechat_stock(activity["id"])["status"] == "running"

    unlinked = _claim(api, activity["id"], stock["id"], member)
    assert (unlinked.status_code, unlinked.json()["error"]["code"]) == (
        409,
        "vouchers.wechat_not_linked",
    )
    assert "WeChat" in unlinked.json()["error"]["message"]
    _link_wechat(member)
    claimed = _claim(api, activity["id"], stock["id"], member)
    assert claimed.status_code == 201, claimed.text
    assert (claimed.json()["state"], claimed.json()["coupon_id"]) == ("sending", None)
    assert [c["state"] for c in _my_claims(api, member)] == ["sending"]
    again = _claim(api, activity["id"], stock["id"], member)
    assert (again.status_code, again.json()["error"]["code"]) == (
        409,
        "vouchers.member_limit_reached",
    )

    assert tasks.run_due() == 1  # vouchers.send_coupon
    (sent,) = _my_claims(api, member)
    assert sent["state"] == "sent"
    assert sent["coupon_id"]
    assert _ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]
    assert _stocks(api, activity["id"], member)[0]["claimed"] == 1

    spent = api.post(
        f"/_sim/wechatpay/_control/coupons/{sent['coupon_id']}/use", json={"duplicate": True}
    )
    assert spent.json()["statuses"] == [204, 204]
    (used,) = _my_claims(api, member)
    assert used["state"] == "used"
    assert _ledger(member.membership_id) == [
        ("issue", 1000, "wechatpay.coupon_sent"),
        ("redeem", -1000, "wechatpay.coupon_use"),
    ]


def test_a_send_whose_answer_is_lost_is_retried_and_sends_one_coupon(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = _grab(api, tree, operator)
    member = make_member(tree.district_a1)
    _link_wechat(member)
    assert _claim(api, activity_id, stock_id, member).status_code == 201
    _faults(api, "lost")  # WeChat Pay sends the coupon, its answer never arrives
    assert tasks.run_due() == 1
    assert [c["state"] for c in _my_claims(api, member)] == ["sending"]
    assert _ledger(member.membership_id) == []
    clock.advance(timedelta(hours=1))  # past the retry's backoff
    assert tasks.run_due() == 1
    (claim,) = _my_claims(api, member)
    assert claim["state"] == "sent"
    assert sim.send_calls() == 2  # asked twice, with the same out_request_no
    assert _wechat_stock(activity_id)["distributed_coupons"] == 1
    assert _ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]


def test_two_hundred_concurrent_claims_never_pass_the_stock(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = _grab(api, tree, operator, max_coupons=150)
    members = [make_member(tree.district_a1) for _ in range(200)]
    for member in members:
        _link_wechat(member)

    def claim(member: Member) -> tuple[int, str]:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            resp = _claim(client, activity_id, stock_id, member)
            body = resp.json()
            return resp.status_code, body.get("state") or body["error"]["code"]

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(claim, members))
    assert answers.count((201, "sending")) == 150
    assert answers.count((409, "vouchers.stock_empty")) == 50
    while tasks.run_due():
        pass
    assert _wechat_stock(activity_id)["distributed_coupons"] == 150
    states = [c["state"] for m in members for c in _my_claims(api, m)]
    assert states == ["sent"] * 150
    assert _stocks(api, activity_id, members[0])[0]["claimed"] == 150

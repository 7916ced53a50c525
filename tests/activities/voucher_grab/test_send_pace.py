"""Coupon sends keep to WeChat Pay's frequency per merchant, through the simulator (which
answers 429 FREQUENCY_LIMITED past it): paced, concurrent senders are never answered 429;
unpaced, the sends answered 429 are retried with the same out_request_no and each member
still gets exactly one coupon."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from gonghui import clock, tasks
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.settings import get_settings
from tests.activities.conftest import Member, MemberFactory
from tests.activities.voucher_grab.conftest import claim, grab, link_wechat, my_claims, wechat_stock
from tests.fixtures import Tree

THREADS = 8


def simulator_limit(api: httpx.Client, sends_per_s: int) -> None:
    resp = api.post(
        "/_sim/wechatpay/_control/faults", json={"latency_ms": 0, "sends_per_s": sends_per_s}
    )
    assert resp.status_code == 200, resp.text


def claimed(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory, n: int
) -> tuple[int, list[Member]]:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=n)
    members = [make_member(tree.district_a1) for _ in range(n)]
    for member in members:
        link_wechat(member)
        assert claim(api, activity_id, stock_id, member).status_code == 201
    return activity_id, members


def send_concurrently() -> int:
    """Run the due sends on THREADS threads at once, as a worker does; how many ran."""
    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(lambda _: tasks.run_due(), range(THREADS)))


def sent_coupons(api: httpx.Client, members: list[Member]) -> list[str]:
    return [c["coupon_id"] for m in members for c in my_claims(api, m) if c["state"] == "sent"]


def test_paced_senders_are_never_answered_429(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity_id, members = claimed(api, tree, operator, make_member, 24)
    # Paced at 2 calls every tenth of a second (20/s); WeChat Pay allows 30/s, the margin
    # for calls that leave here paced but arrive bunched (unpaced, 8 threads make hundreds).
    simulator_limit(api, 30)
    monkeypatch.setattr(get_settings(), "wechatpay_calls_per_s", 22)

    assert send_concurrently() == 24
    assert sim.frequency_limited() == 0
    assert sim.send_calls() == 24  # each sent once, none asked again
    assert len(set(sent_coupons(api, members))) == 24
    assert wechat_stock(activity_id)["distributed_coupons"] == 24


def test_unpaced_sends_answered_429_are_retried_and_each_member_gets_one_coupon(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity_id, members = claimed(api, tree, operator, make_member, 12)
    simulator_limit(api, 1)
    monkeypatch.setattr(get_settings(), "wechatpay_calls_per_s", 0)

    send_concurrently()
    limited = sim.frequency_limited()
    assert limited >= 1
    assert [c["state"] for m in members for c in my_claims(api, m)].count("failed") == 0
    simulator_limit(api, 0)
    for _ in range(5):
        clock.advance(timedelta(hours=1))  # past the retries' backoff
        send_concurrently()
    assert len(set(sent_coupons(api, members))) == 12
    assert wechat_stock(activity_id)["distributed_coupons"] == 12
    assert sim.send_calls() >= 12 + limited  # each answered 429 was asked again

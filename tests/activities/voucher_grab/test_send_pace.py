"""Coupon sends keep to WeChat Pay's frequency per merchant, through the simulator (which
answers 429 FREQUENCY_LIMITED past it): paced, concurrent senders are never answered 429;
unpaced, the sends answered 429 are retried with the same out_request_no and each member
still gets exactly one coupon. While members keep the hot writer busy, sends give way."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from gonghui import clock, tasks
from gonghui.activities.voucher_grab import claims
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.settings import get_settings
from gonghui.tasks import queue
from tests.activities.conftest import Member, MemberFactory
from tests.activities.voucher_grab.conftest import claimants, grab, my_claims, wechat_stock
from tests.fixtures import Tree, WriterLoad

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
    members = claimants(api, make_member, tree.district_a1, activity_id, stock_id, n)
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


def test_sends_give_way_while_members_keep_the_hot_writer_busy_within_their_bound(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    writer_load: WriterLoad,
) -> None:
    grabbed = grab(api, tree, operator, max_coupons=3)
    early = claimants(api, make_member, tree.district_a1, *grabbed)
    clock.advance(timedelta(seconds=claims.SEND_HOLD_S / 2))
    late = claimants(api, make_member, tree.district_a1, *grabbed, 2)

    def sends_relayed() -> list[queue.Sending]:
        return [m for m in queue.claim_due() if m.name == claims.SEND_COUPON]

    writer_load(0.9)  # the opening minute: claims keep the writer busy
    assert sends_relayed() == []
    assert sim.send_calls() == 0
    assert [c["state"] for m in early + late for c in my_claims(api, m)] == ["sending"] * 3
    clock.advance(timedelta(seconds=claims.SEND_HOLD_S / 2 + 1))  # the first one's bound
    [bound] = sends_relayed()
    assert bound.task_ids == (bound.task_id,)
    assert queue.execute(bound.name, bound.task_id, bound.token) == "done"
    assert [c["state"] for c in my_claims(api, early[0])] == ["sent"]
    assert sends_relayed() == []  # the later two still give way

    writer_load(0.2)  # the rush is over
    [rest] = sends_relayed()
    assert queue.execute(rest.name, rest.task_id, rest.token) == "done"
    assert [c["state"] for m in late for c in my_claims(api, m)] == ["sent"] * 2
    assert sim.send_calls() == 3

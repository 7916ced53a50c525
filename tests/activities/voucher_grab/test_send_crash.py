"""``kill -9`` of a worker between the claims' commit and their coupons' answers: the claims
are committed here (this test's server runs no worker); a worker takes their sends and is
killed while WeChat Pay (the simulator, answering slowly) is still working on them, so
some coupons are sent with nobody left to record them. Another worker sends every claim
again with the same out_request_no: every claim ends ``sent``, and WeChat Pay sent each
member exactly one coupon."""

from __future__ import annotations

import httpx
import pytest

from gonghui.integrations import wechatpay_simulator as sim
from tests.activities.conftest import MemberFactory
from tests.activities.voucher_grab.conftest import (
    claimants,
    grab,
    my_claims,
    wechat_stock,
)
from tests.faults import eventually
from tests.fixtures import Tree
from tests.serverproc import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("loopback_allowed")]

FAST = {
    "GONGHUI_TASK_POLL_S": "0.1",
    "GONGHUI_TASK_HEARTBEAT_TIMEOUT_S": "2",
    "GONGHUI_TASK_BACKOFF_BASE_S": "0.2",
    "GONGHUI_FUNCTIONS_MIN_WORKERS": "0",
}
CLAIMS = 20


def test_coupons_whose_sender_was_killed_are_each_sent_once(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    activity_id, stock_id = grab(api, tree, operator, max_coupons=CLAIMS)
    members = claimants(api, make_member, tree.district_a1, activity_id, stock_id, CLAIMS)
    # WeChat Pay now takes 1.5 s a coupon: the worker is killed with sends in flight.
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 1500})
    first = WorkerProcess(env=FAST).start()
    try:
        eventually("two sends in flight", lambda: sim.send_calls() >= 2, within_s=60)
    finally:
        first.kill()
    in_flight = sim.send_calls()
    api.post("/_sim/wechatpay/_control/faults", json={"latency_ms": 0})
    second = WorkerProcess(env=FAST).start()
    try:
        eventually(
            "every claim sent",
            lambda: all([c["state"] for c in my_claims(api, m)] == ["sent"] for m in members),
            within_s=90,
        )
    finally:
        second.stop()
    coupons = [my_claims(api, m)[0]["coupon_id"] for m in members]
    assert len(set(coupons)) == CLAIMS
    assert wechat_stock(activity_id)["distributed_coupons"] == CLAIMS
    assert sim.send_calls() >= CLAIMS + 1  # at least one send was asked for again
    assert in_flight >= 2

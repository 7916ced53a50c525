"""The opening minute of a voucher grab as its operators read it over the API: claims per
second, what is left of each stock, the send backlog, what was sent and what failed."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from gonghui import clock, tasks
from gonghui.activities.voucher_grab import claims as voucher_claims
from gonghui.activities.voucher_grab import waiting
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.activities.conftest import MemberFactory
from tests.activities.voucher_grab.conftest import (
    claim,
    grab,
    link_wechat,
    move_wechat_stock,
    my_claims,
)
from tests.fixtures import StaffFactory, Tree


def figures(api: httpx.Client, headers: dict[str, str], activity_id: int) -> httpx.Response:
    return api.get(f"/api/v1/activities/{activity_id}/voucher-dashboard", headers=headers)


def test_operators_watch_claims_sends_and_failures_of_the_opening_minute(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=10)
    start = figures(api, operator, activity_id)
    assert start.status_code == 200, start.text
    body = start.json()
    assert len(body["claims_per_second"]) == 60
    assert body["send_hold_s"] == voucher_claims.SEND_HOLD_S  # how long a send may give way
    assert (sum(body["claims_per_second"]), body["claims_rate"]) == (0, 0.0)
    assert [(s["id"], s["left"], s["status"]) for s in body["stocks"]] == [
        (stock_id, 10, "running")
    ]
    assert (body["left"], body["sending"], body["sent"], body["failed"], body["stuck"]) == (
        10,
        0,
        0,
        0,
        0,
    )

    members = [make_member(tree.district_a1) for _ in range(5)]
    for member in members:
        link_wechat(member)
    for member in members[:3]:
        assert claim(api, activity_id, stock_id, member).status_code == 201
    assert tasks.run_due() == 3  # sent
    move_wechat_stock(activity_id, "pause")  # WeChat Pay refuses the next sends
    for member in members[3:]:
        assert claim(api, activity_id, stock_id, member).status_code == 201
    middle = figures(api, operator, activity_id).json()
    assert (middle["left"], middle["sending"], middle["sent"], middle["failed"]) == (5, 2, 3, 0)
    assert sum(middle["claims_per_second"]) == 5
    assert middle["claims_rate"] == sum(middle["claims_per_second"][-10:]) / 10

    assert tasks.run_due() == 2  # both held: the stock is paused at WeChat Pay
    held = figures(api, operator, activity_id).json()
    assert (held["left"], held["sending"], held["waiting"], held["sent"], held["failed"]) == (
        5,
        0,
        2,
        3,
        0,
    )

    # They wait no longer than the bound: tried once more, refused, their coupons given back.
    monkeypatch.setattr(get_settings(), "voucher_send_max_wait_s", 60.0)
    clock.advance(timedelta(seconds=61))
    waiting.check_waiting()
    assert tasks.run_due() == 2
    refused = figures(api, operator, activity_id).json()
    assert (refused["left"], refused["sending"], refused["sent"], refused["failed"]) == (7, 0, 3, 2)
    assert refused["waiting"] == 0

    # Claimed again once the stock restarts; this send runs out of attempts (a dead task).
    restarted = api.post(
        f"/api/v1/activities/{activity_id}/voucher-stocks/{stock_id}/restart", headers=operator
    )
    assert restarted.status_code == 200, restarted.text
    assert claim(api, activity_id, stock_id, members[3]).status_code == 201
    stuck = my_claims(api, members[3])[0]
    voucher_claims._dead({"claim_id": stuck["id"]}, "no answer from WeChat Pay")
    end = figures(api, operator, activity_id).json()
    assert (end["left"], end["sending"], end["stuck"], end["sent"], end["failed"]) == (
        6,
        1,
        1,
        3,
        2,
    )
    assert sum(end["claims_per_second"]) == 1  # the others are more than a minute old


def test_only_the_grabs_operators_read_its_figures(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    activity_id, _ = grab(api, tree, operator)
    below = make_staff(tree.city_a, Role.OPERATOR).headers
    member = make_member(tree.district_a1)
    assert figures(api, below, activity_id).status_code == 404
    assert figures(api, member.headers, activity_id).status_code == 403
    assert figures(api, operator, activity_id + 1000).status_code == 404

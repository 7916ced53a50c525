"""The opening minute of a voucher grab as its operators read it over the API: claims per
second, what is left of each stock, the send backlog, what was sent and what failed."""

from __future__ import annotations

import httpx

from gonghui import tasks
from gonghui.activities.voucher_grab import claims as voucher_claims
from gonghui.orgs.models import Role
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
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=10)
    start = figures(api, operator, activity_id)
    assert start.status_code == 200, start.text
    body = start.json()
    assert len(body["claims_per_second"]) == 60
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

    assert tasks.run_due() == 2  # both refused: failed, their coupons given back
    refused = figures(api, operator, activity_id).json()
    assert (refused["left"], refused["sending"], refused["sent"], refused["failed"]) == (7, 0, 3, 2)

    # Claimed again once the stock restarts; this send runs out of attempts (a dead task).
    move_wechat_stock(activity_id, "restart")
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
    assert sum(end["claims_per_second"]) == 6  # failed claims were claims too


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

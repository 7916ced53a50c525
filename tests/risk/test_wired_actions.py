"""Every hot member action goes through risk control: once its activity has flagged a
network, a draw, a voucher claim, a quiz attempt and a checkout from there are refused
without a solved challenge (and leave nothing written), and go ahead with one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import tasks
from gonghui.activities.lottery.models import Draw
from gonghui.activities.quiz.models import Attempt
from gonghui.activities.voucher_grab.models import VoucherClaim
from gonghui.activities.voucher_grab.stocks import list_stocks
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.mall.models import Order
from gonghui.orgs.models import Role
from tests.activities.conftest import (
    Member,
    MemberFactory,
    add_questions,
    create_activity,
    lottery_config,
    quiz_config,
)
from tests.activities.voucher_grab.conftest import faults, grab_config, link_wechat
from tests.fixtures import StaffFactory, Tree
from tests.mall.conftest import ADDRESS, product, sale
from tests.risk.conftest import (
    ClientFrom,
    answered,
    challenge_of,
    device,
    fetch_picture,
    set_limits,
)

Act = Callable[[httpx.Client, Member, dict[str, str]], httpx.Response]


@pytest.fixture(autouse=True)
def _simulator(api: httpx.Client) -> Iterator[None]:
    sim.reset()
    faults(api)
    yield
    sim.reset()


def _count(model: type, **where: int) -> int:
    with unit_of_work(read_only=True) as session:
        stmt = select(func.count()).select_from(model).filter_by(**where)
        return int(session.scalar(stmt) or 0)


def _refused_until_solved(
    client: ClientFrom,
    members: list[Member],
    act: Act,
    written: Callable[[], int],
    ok: int,
) -> None:
    """Two accounts act from one /24; the third is challenged and flags the network; the
    first, acting again, is challenged too; the third then solves its challenge."""
    farm = client("127.0.88.9")
    first, second, third = members
    assert act(farm, first, device()).status_code == ok
    assert act(farm, second, device()).status_code == ok
    assert written() == 2
    challenge_of(act(farm, third, device()))
    refused = act(farm, first, device())
    challenge_of(refused)
    assert "network_flagged" in refused.json()["error"]["details"]["reasons"]
    assert written() == 2
    phone = device()
    challenge_id = challenge_of(act(farm, third, phone))
    fetch_picture(farm, challenge_id, third.headers)
    resp = act(farm, third, {**phone, **answered(challenge_id)})
    assert resp.status_code == ok, resp.text
    assert written() == 3


def test_draws_are_checked(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    config = lottery_config([{"name": "谢谢参与", "kind": "none", "weight": 1}])
    activity_id = int(create_activity(api, operator, tree.city_a, config=config)["id"])
    set_limits(api, operator, activity_id, network_accounts=2, pass_s=0)

    def act(client: httpx.Client, member: Member, headers: dict[str, str]) -> httpx.Response:
        return client.post(
            f"/api/v1/activities/{activity_id}/draws",
            json={"entropy": "e"},
            headers={**member.headers, **headers},
        )

    members = [make_member(tree.city_a) for _ in range(3)]
    _refused_until_solved(
        client_from, members, act, lambda: _count(Draw, activity_id=activity_id), 200
    )


def test_voucher_claims_are_checked(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.province, Role.OPERATOR).headers
    config = grab_config(max_coupons=10)
    activity_id = int(create_activity(api, operator, tree.province, config=config)["id"])
    assert tasks.run_due() >= 1  # the stock opens at WeChat Pay
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity_id)
    set_limits(api, operator, activity_id, network_accounts=2, pass_s=0)
    members = [make_member(tree.city_a) for _ in range(3)]
    for member in members:
        link_wechat(member)

    def act(client: httpx.Client, member: Member, headers: dict[str, str]) -> httpx.Response:
        return client.post(
            f"/api/v1/activities/{activity_id}/voucher-stocks/{stock.id}/claims",
            headers={**member.headers, **headers},
        )

    _refused_until_solved(
        client_from, members, act, lambda: _count(VoucherClaim, activity_id=activity_id), 201
    )


def test_quiz_attempts_are_checked(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    add_questions(api, operator, tree.city_a)
    activity = create_activity(api, operator, tree.city_a, config=quiz_config(), title="知识竞答")
    activity_id = int(activity["id"])
    set_limits(api, operator, activity_id, network_accounts=2, pass_s=0)

    def act(client: httpx.Client, member: Member, headers: dict[str, str]) -> httpx.Response:
        return client.post(
            f"/api/v1/activities/{activity_id}/quiz/attempts",
            headers={**member.headers, **headers},
        )

    members = [make_member(tree.city_a) for _ in range(3)]
    _refused_until_solved(
        client_from, members, act, lambda: _count(Attempt, activity_id=activity_id), 201
    )


def test_checkouts_are_checked(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.province, Role.OPERATOR).headers
    sku_id = product(api, operator, tree.province, stock=10)["skus"][0]["id"]
    sale_id = sale(api, operator, tree.province)
    set_limits(api, operator, sale_id, network_accounts=2, pass_s=0)

    def act(client: httpx.Client, member: Member, headers: dict[str, str]) -> httpx.Response:
        return client.post(
            "/api/v1/me/mall/orders",
            json={
                "items": [{"sku_id": sku_id, "quantity": 1}],
                "activity_id": sale_id,
                "address": ADDRESS,
            },
            headers={**member.headers, **headers},
        )

    members = [make_member(tree.city_a) for _ in range(3)]
    for member in members:
        link_wechat(member)
    _refused_until_solved(client_from, members, act, lambda: _count(Order), 201)

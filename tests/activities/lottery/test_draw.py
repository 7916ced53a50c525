"""Drawing: chances, stock, win caps, budgets, idempotent retries, physical prizes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from gonghui import clock
from gonghui.activities.lottery.models import Draw, PoolPrize
from gonghui.benefits.models import Budget, LedgerEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory, create_activity, draw, lottery_config
from tests.fixtures import StaffFactory, Tree


def _stock(activity_id: int) -> list[int]:
    with unit_of_work() as session:
        pool = session.query(PoolPrize).filter_by(activity_id=activity_id).order_by("position")
        return [p.stock for p in pool]


def _ledger_count(activity_id: int) -> int:
    with unit_of_work() as session:
        return session.query(LedgerEntry).filter_by(activity_id=activity_id).count()


def _only(prize: dict[str, Any], **rules: Any) -> dict[str, Any]:
    return lottery_config([prize], **rules)


def test_never_more_winners_than_stock(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = _only({"name": "五元券", "kind": "voucher", "weight": 1, "stock": 2, "value": 500})
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    outcomes = [
        draw(api, activity["id"], make_member(tree.city_a).headers).json()["outcome"]
        for _ in range(4)
    ]
    assert outcomes == ["won", "won", "out_of_stock", "out_of_stock"]
    assert _stock(activity["id"]) == [0]
    assert _ledger_count(activity["id"]) == 2
    stats = api.get(f"/api/v1/activities/{activity['id']}/stats", headers=op.headers).json()
    assert (stats["draws"], stats["members_drawing"]) == (4, 4)
    assert [(p["initial_stock"], p["stock"], p["won"]) for p in stats["prizes"]] == [(2, 0, 2)]
    assert stats["budget"] == {
        "cents_total": None,
        "cents_spent": 1000,
        "points_total": None,
        "points_spent": 0,
    }


def test_one_free_chance_a_day_and_a_cap_on_wins(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = _only(
        {"name": "积分", "kind": "points", "weight": 1, "stock": 10, "value": 50},
        free_draws_per_day=1,
        max_wins_per_member=1,
    )
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    member = make_member(tree.city_a)
    first = draw(api, activity["id"], member.headers)
    assert first.status_code == 200
    assert first.json()["outcome"] == "won"
    assert first.json()["chances_left"] == 0
    again = draw(api, activity["id"], member.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "lottery.no_chances"

    clock.advance(timedelta(days=1))
    capped = draw(api, activity["id"], member.headers)
    assert capped.json()["outcome"] == "win_cap"
    assert capped.json()["prize"] is None
    assert _stock(activity["id"]) == [9]
    wallet = api.get("/api/v1/me/wallet", headers=member.headers).json()
    assert wallet["points"] == 50


def test_budget_stops_issuing_once_spent(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = _only({"name": "十元券", "kind": "voucher", "weight": 1, "stock": 10, "value": 1000})
    activity = create_activity(api, op.headers, tree.city_a, config=config, budget_cents=2500)
    outcomes = [
        draw(api, activity["id"], make_member(tree.city_a).headers).json()["outcome"]
        for _ in range(3)
    ]
    assert outcomes == ["won", "won", "budget_exhausted"]
    assert _stock(activity["id"]) == [8]
    with unit_of_work() as session:
        budget = session.get(Budget, activity["id"])
        assert budget is not None
        assert (budget.cents_total, budget.cents_spent) == (2500, 2000)


def test_retry_with_the_same_idempotency_key_returns_the_original_draw(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api, op.headers, tree.city_a, config=lottery_config(free_draws_per_day=1)
    )
    member = make_member(tree.city_a)
    first = draw(api, activity["id"], member.headers, **{"Idempotency-Key": "k-1"})
    retry = draw(api, activity["id"], member.headers, **{"Idempotency-Key": "k-1"})
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    with unit_of_work() as session:
        assert session.query(Draw).count() == 1
    fresh = draw(api, activity["id"], member.headers, **{"Idempotency-Key": "k-2"})
    assert fresh.json()["error"]["code"] == "lottery.no_chances"
    reused = api.post(
        "/api/v1/me/prizes/1/address",
        json={"name": "张三", "phone": "13800138000", "address": "天河路1号"},
        headers={**member.headers, "Idempotency-Key": "k-1"},
    )
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "activities.idempotency_key_reused"


def test_physical_prize_needs_an_address_before_the_deadline(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = _only(
        {"name": "电饭煲", "kind": "physical", "weight": 1, "stock": 5},
        address_deadline_hours=48,
        max_wins_per_member=None,
        free_draws_per_day=2,
    )
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    member = make_member(tree.city_a)
    won = [draw(api, activity["id"], member.headers).json() for _ in range(2)]
    prize_ids = [int(w["benefit"].split(":")[1]) for w in won]
    address = {"name": "张三", "phone": "13800138000", "address": "广州市天河区软件路1号"}

    ok = api.post(f"/api/v1/me/prizes/{prize_ids[0]}/address", json=address, headers=member.headers)
    assert ok.status_code == 200
    assert ok.json()["status"] == "to_ship"

    clock.advance(timedelta(hours=49))
    late = api.post(
        f"/api/v1/me/prizes/{prize_ids[1]}/address", json=address, headers=member.headers
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "benefits.address_deadline_passed"
    prizes = api.get("/api/v1/me/wallet", headers=member.headers).json()["prizes"]
    assert sorted((p["id"], p["status"]) for p in prizes) == [
        (prize_ids[0], "to_ship"),
        (prize_ids[1], "awaiting_address"),
    ]

    other = make_member(tree.city_a)
    stolen = api.post(
        f"/api/v1/me/prizes/{prize_ids[1]}/address", json=address, headers=other.headers
    )
    assert stolen.status_code == 404


def test_winner_list_masks_names(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = _only({"name": "五元券", "kind": "voucher", "weight": 1, "stock": 5, "value": 500})
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    draw(api, activity["id"], make_member(tree.city_a, name="欧阳娜娜").headers)
    draw(api, activity["id"], make_member(tree.city_a, name="李雷").headers)
    winners = api.get(f"/api/v1/public/lotteries/{activity['id']}/winners").json()
    assert [(w["name"], w["prize"]) for w in winners] == [("李*", "五元券"), ("欧**娜", "五元券")]

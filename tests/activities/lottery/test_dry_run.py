"""Dry run: an operator plays a lottery's prize table against simulated members before
publishing it, and sees how the prizes fall, the budget used and when stock runs out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.activities.lottery.dry_run import DRAWS_MAX
from gonghui.activities.lottery.models import Draw
from gonghui.db import unit_of_work
from tests.activities.conftest import MemberFactory, create_activity, lottery_config, quiz_config
from tests.fixtures import Staff, StaffFactory, Tree

VOUCHER = {"name": "十元券", "kind": "voucher", "weight": 1, "stock": 5, "value": 1000}
NOTHING = {"name": "谢谢参与", "kind": "none", "weight": 3}


@pytest.fixture
def admin(tree: Tree, make_staff: StaffFactory) -> Staff:
    return make_staff(tree.province)


def run(
    api: httpx.Client, headers: dict[str, str], activity_id: int, **body: Any
) -> httpx.Response:
    return api.post(f"/api/v1/activities/{activity_id}/dry-run", json=body, headers=headers)


def lottery(api: httpx.Client, admin: Staff, tree: Tree, **fields: Any) -> int:
    prizes = fields.pop("prizes", [VOUCHER, NOTHING])
    rules = fields.pop("rules", {})
    config = lottery_config(prizes, **rules)
    activity = create_activity(
        api, admin.headers, tree.province, publish=False, config=config, **fields
    )
    return int(activity["id"])


def test_a_draft_is_played_day_by_day_and_stock_runs_out_on_a_day(
    api: httpx.Client, tree: Tree, admin: Staff
) -> None:
    activity_id = lottery(
        api, admin, tree, budget_cents=1_000_000, rules={"max_wins_per_member": None}
    )
    resp = run(api, admin.headers, activity_id, members=200, participation=0.5, seed=7)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    days = len(result["days"])
    assert days in (7, 8)  # a week's window touches 7 or 8 local days
    # 100 members a day, one free draw each.
    assert result["draws"] == 100 * days == sum(d["draws"] for d in result["days"])
    assert sum(result["outcomes"].values()) == result["draws"]
    voucher, nothing = result["prizes"]
    assert voucher["won"] == 5
    assert voucher["picked"] > 5
    assert voucher["out_of_stock_on"] == next(
        d["day"]
        for d, won in zip(result["days"], _running(result["days"]), strict=True)
        if won == 5
    )
    assert result["outcomes"]["out_of_stock"] == voucher["picked"] - 5
    assert result["outcomes"]["no_prize"] == nothing["picked"]
    assert result["cents_used"] == 5 * 1000
    assert result["budget_out_on"] is None
    # Nothing was written: the draft stays a draft with no draws.
    assert (
        api.get(f"/api/v1/activities/{activity_id}", headers=admin.headers).json()["status"]
        == "draft"
    )
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Draw)) == 0


def _running(days: list[dict[str, Any]]) -> list[int]:
    total, out = 0, []
    for day in days:
        total += day["won"]
        out.append(total)
    return out


def test_the_same_seed_gives_the_same_run_and_shares_follow_the_weights(
    api: httpx.Client, tree: Tree, admin: Staff
) -> None:
    big = {**VOUCHER, "stock": 10_000_000}
    activity_id = lottery(
        api, admin, tree, prizes=[big, NOTHING], rules={"max_wins_per_member": None}
    )
    first = run(api, admin.headers, activity_id, members=5000, participation=1, seed=1).json()
    again = run(api, admin.headers, activity_id, members=5000, participation=1, seed=1).json()
    other = run(api, admin.headers, activity_id, members=5000, participation=1, seed=2).json()
    assert first == again
    assert first["prizes"] != other["prizes"]
    voucher, nothing = first["prizes"]
    share = voucher["picked"] / first["draws"]
    assert 0.23 < share < 0.27  # weight 1 of 4, over 35,000+ draws
    assert voucher["won"] == voucher["picked"]
    assert voucher["out_of_stock_on"] is None


def test_the_budget_the_win_cap_and_the_limits_bound_the_run(
    api: httpx.Client, tree: Tree, admin: Staff
) -> None:
    prizes = [{**VOUCHER, "weight": 1, "stock": 100}]
    budgeted = lottery(
        api, admin, tree, prizes=prizes, budget_cents=3000, rules={"max_wins_per_member": None}
    )
    result = run(api, admin.headers, budgeted, members=10, participation=1, seed=3).json()
    assert (result["cents_used"], result["prizes"][0]["won"]) == (3000, 3)
    assert result["outcomes"]["budget_exhausted"] == result["draws"] - 3
    assert result["budget_out_on"] == result["days"][0]["day"]

    capped = lottery(api, admin, tree, prizes=prizes, rules={"max_wins_per_member": 2})
    result = run(api, admin.headers, capped, members=10, participation=1, seed=3).json()
    assert (result["winners"], result["prizes"][0]["won"]) == (10, 20)
    assert result["outcomes"]["win_cap"] == result["draws"] - 20

    limited = lottery(
        api, admin, tree, prizes=prizes, limit_total=2, rules={"free_draws_per_day": 3}
    )
    result = run(api, admin.headers, limited, members=10, participation=1, seed=3).json()
    assert (result["draws"], result["drawing_members"]) == (20, 10)
    per_day = lottery(
        api, admin, tree, prizes=prizes, limit_per_day=1, rules={"free_draws_per_day": 3}
    )
    result = run(api, admin.headers, per_day, members=10, participation=1, draws_per_day=5).json()
    assert [d["draws"] for d in result["days"]] == [10] * len(result["days"])


def test_bad_runs_are_refused_in_the_envelope(
    api: httpx.Client,
    tree: Tree,
    admin: Staff,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    activity_id = lottery(api, admin, tree)
    too_many = run(api, admin.headers, activity_id, members=DRAWS_MAX, participation=1)
    assert too_many.status_code == 422, too_many.text
    assert too_many.json()["error"]["code"] == "lottery.dry_run_too_large"
    assert run(api, admin.headers, activity_id, members=0).status_code == 422
    assert run(api, admin.headers, activity_id, members=10, participation=0).status_code == 422

    quiz = create_activity(api, admin.headers, tree.province, publish=False, config=quiz_config())
    refused = run(api, admin.headers, quiz["id"], members=10)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "lottery.dry_run_not_a_lottery"

    outsider = make_staff(tree.city_b)
    assert run(api, outsider.headers, activity_id, members=10).status_code in (403, 404)
    member = make_member(tree.province)
    assert run(api, member.headers, activity_id, members=10).status_code in (401, 403)


def test_an_operator_runs_a_few_a_minute(api: httpx.Client, tree: Tree, admin: Staff) -> None:
    activity_id = lottery(api, admin, tree)
    answers = [run(api, admin.headers, activity_id, members=10).status_code for _ in range(7)]
    assert answers[:6] == [200] * 6
    assert answers[6] == 429

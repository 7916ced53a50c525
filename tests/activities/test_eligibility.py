"""Who may take part: the org chain, member tags, membership age; per-member limits."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import httpx

from gonghui import clock
from gonghui.activities.models import Counter
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory, create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree

PLENTY = lottery_config([{"name": "谢谢参与", "kind": "none", "weight": 1}], free_draws_per_day=10)


def _draw(api: httpx.Client, activity_id: int, headers: dict[str, str]) -> httpx.Response:
    return api.post(f"/api/v1/activities/{activity_id}/draws", headers=headers)


def _counters(membership_id: int) -> dict[str, int]:
    with unit_of_work() as session:
        rows = session.query(Counter).filter(Counter.membership_id == membership_id).all()
        return {r.scope: r.used for r in rows}


def test_activity_reaches_members_below_its_org_only(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(api, op.headers, tree.city_a, config=PLENTY)
    below = make_member(tree.grassroots_a1x)
    at_org = make_member(tree.city_a)
    elsewhere = make_member(tree.grassroots_b1)
    above = make_member(tree.province)
    assert _draw(api, activity["id"], below.headers).status_code == 200
    assert _draw(api, activity["id"], at_org.headers).status_code == 200
    for outsider in (elsewhere, above):
        resp = _draw(api, activity["id"], outsider.headers)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "activity.not_found"
        assert _counters(outsider.membership_id) == {}


def test_staff_without_membership_cannot_draw(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(api, op.headers, tree.city_a, config=PLENTY)
    resp = _draw(api, activity["id"], op.headers)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "accounts.not_verified_member"


def test_member_tags_and_membership_age(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api,
        op.headers,
        tree.city_a,
        config=PLENTY,
        eligibility={"min_membership_days": 365, "tags_any": ["model_worker", "veteran"]},
    )
    veteran_old = make_member(tree.city_a, tags=["veteran"], join_date=date(2020, 1, 1))
    veteran_new = make_member(tree.city_a, tags=["veteran"], join_date=clock.local_day())
    untagged_old = make_member(tree.city_a, join_date=date(2020, 1, 1))
    assert _draw(api, activity["id"], veteran_old.headers).status_code == 200
    for member in (veteran_new, untagged_old):
        resp = _draw(api, activity["id"], member.headers)
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "activities.not_eligible"
        assert _counters(member.membership_id) == {}


def test_limits_in_total_and_per_shanghai_day(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    # 23:30 in Shanghai: the next day starts in half an hour.
    shanghai_evening = datetime.combine(
        clock.local_day() + timedelta(days=1), datetime.min.time(), tzinfo=clock.display_zone()
    ) - timedelta(minutes=30)
    clock.advance(shanghai_evening - clock.now())
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api, op.headers, tree.city_a, config=PLENTY, limit_total=3, limit_per_day=2
    )
    member = make_member(tree.city_a)
    first_day = clock.local_day()
    assert [_draw(api, activity["id"], member.headers).status_code for _ in range(2)] == [
        200,
        200,
    ]
    third = _draw(api, activity["id"], member.headers)
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "activities.limit_per_day_reached"

    clock.advance(timedelta(minutes=31))
    assert clock.local_day() == first_day + timedelta(days=1)
    assert _draw(api, activity["id"], member.headers).status_code == 200
    fourth = _draw(api, activity["id"], member.headers)
    assert fourth.status_code == 409
    assert fourth.json()["error"]["code"] == "activities.limit_total_reached"
    assert _counters(member.membership_id)["draws"] == 3
    assert _counters(member.membership_id)["limit"] == 3

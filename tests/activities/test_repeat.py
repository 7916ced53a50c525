"""'Repeat last month's': one call makes next month's draft of an activity, with its window
moved a month on and nothing of what members did in it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from gonghui.activities.design import one_month_later
from gonghui.activities.lottery.models import Draw
from gonghui.activities.models import Activity, Counter
from gonghui.activities.voucher_grab.models import VoucherStock
from gonghui.activities.voucher_grab.stocks import list_stocks
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    draw,
    lottery_config,
    quiz_config,
)
from tests.fixtures import StaffFactory, Tree

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def activity_count() -> int:
    with unit_of_work(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Activity)) or 0


@pytest.mark.parametrize(
    ("starts", "ends", "next_starts", "next_ends"),
    [
        ("2027-03-15 10:00", "2027-03-22 10:00", "2027-04-15 10:00", "2027-04-22 10:00"),
        ("2027-01-31 20:00", "2027-02-02 20:00", "2027-02-28 20:00", "2027-03-02 20:00"),
        ("2028-01-31 20:00", "2028-02-02 20:00", "2028-02-29 20:00", "2028-03-02 20:00"),
        # 01:00 in Shanghai is the day before in UTC: the day is counted where operators are.
        ("2027-03-31 01:00", "2027-04-01 01:00", "2027-04-30 01:00", "2027-05-01 01:00"),
        ("2027-12-31 09:00", "2028-01-10 09:00", "2028-01-31 09:00", "2028-02-10 09:00"),
        # A whole month keeps its length: February's copy runs into March.
        ("2027-01-01 00:00", "2027-01-31 23:59", "2027-02-01 00:00", "2027-03-03 23:59"),
    ],
)
def test_repeat_moves_the_window_a_month_on_clamping_the_day(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    starts: str,
    ends: str,
    next_starts: str,
    next_ends: str,
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    source = create_activity(
        api,
        op.headers,
        tree.city_a,
        publish=False,
        starts_at=local(starts).isoformat(),
        ends_at=local(ends).isoformat(),
    )
    resp = api.post(f"/api/v1/activities/{source['id']}/repeat", headers=op.headers)
    assert resp.status_code == 201, resp.text
    copy = resp.json()
    assert datetime.fromisoformat(copy["starts_at"]) == local(next_starts)
    assert datetime.fromisoformat(copy["ends_at"]) == local(next_ends)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)), st.times())
def test_one_month_later_is_the_same_wall_clock_time_on_the_clamped_day(
    day: date, moment: time
) -> None:
    start = datetime.combine(day, moment, tzinfo=SHANGHAI)
    later = one_month_later(start).astimezone(SHANGHAI)
    assert (later.year * 12 + later.month) - (start.year * 12 + start.month) == 1
    assert later.time() == start.time()
    assert later.day == start.day or (
        later.day < start.day and (later + timedelta(days=1)).day == 1
    )


def test_repeat_copies_the_design_and_none_of_what_members_did(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a)
    source = create_activity(
        api, op.headers, tree.city_a, config=lottery_config(free_draws_per_day=3), limit_total=3
    )
    for _ in range(2):
        assert draw(api, source["id"], member.headers).status_code == 200

    resp = api.post(f"/api/v1/activities/{source['id']}/repeat", headers=op.headers)
    assert resp.status_code == 201, resp.text
    copy = resp.json()
    assert copy["status"] == "draft"
    assert copy["cloned_from_id"] == source["id"]
    assert (copy["org_id"], copy["title"], copy["config"]) == (
        source["org_id"],
        source["title"],
        source["config"],
    )
    assert copy["limit_total"] == 3
    assert copy["seed_commitment"] is None
    assert (
        api.post(f"/api/v1/activities/{copy['id']}/publish", headers=op.headers).status_code == 200
    )
    stats = api.get(f"/api/v1/activities/{copy['id']}/stats", headers=op.headers).json()
    assert stats["draws"] == 0
    assert [(p["initial_stock"], p["stock"], p["won"]) for p in stats["prizes"]] == [
        (5, 5, 0),
        (0, 0, 0),
    ]
    with unit_of_work(read_only=True) as session:
        for model in (Draw, Counter):
            rows = select(func.count()).select_from(model).where(model.activity_id == copy["id"])
            assert session.scalar(rows) == 0, model
        created = session.scalar(
            select(AuditEntry.details).where(
                AuditEntry.action == "activities.create", AuditEntry.subject_id == str(copy["id"])
            )
        )
    assert created == {"kind": "lottery", "title": source["title"], "cloned_from_id": source["id"]}


def test_repeat_of_a_voucher_grab_gets_new_stocks_at_publish(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = {
        "kind": "voucher_grab",
        "voucher_grab": {
            "stocks": [{"name": "十元券", "coupon_amount_cents": 1000, "max_coupons": 100}],
            "appid": "wx_city_a_app",
        },
    }
    source = create_activity(api, op.headers, tree.city_a, config=config)
    with unit_of_work() as session:
        (stock,) = list_stocks(session, activity_id=source["id"])
        stock.wechat_stock_id = "9856000"
        stock.claimed = 40

    copy = api.post(f"/api/v1/activities/{source['id']}/repeat", headers=op.headers).json()
    # The same org, the same WeChat app: a repeat keeps the appid a template would drop.
    assert copy["config"] == source["config"]
    with unit_of_work(read_only=True) as session:
        assert list_stocks(session, activity_id=copy["id"]) == []
    assert (
        api.post(f"/api/v1/activities/{copy['id']}/publish", headers=op.headers).status_code == 200
    )
    with unit_of_work(read_only=True) as session:
        (fresh,) = list_stocks(session, activity_id=copy["id"])
        assert (fresh.wechat_stock_id, fresh.claimed, fresh.max_coupons) == (None, 0, 100)
        assert session.scalar(select(func.count()).select_from(VoucherStock)) == 2


def test_repeat_of_a_quiz_drops_the_link_to_last_month_s_lottery(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    lottery = create_activity(api, op.headers, tree.city_a)
    reward = {"type": "chances", "chances": 1, "lottery_activity_id": lottery["id"]}
    quiz = create_activity(api, op.headers, tree.city_a, config=quiz_config(reward=reward))
    copy = api.post(f"/api/v1/activities/{quiz['id']}/repeat", headers=op.headers).json()
    assert copy["config"]["quiz"]["reward"] is None
    with unit_of_work(read_only=True) as session:
        details = session.scalar(
            select(AuditEntry.details).where(
                AuditEntry.action == "activities.create", AuditEntry.subject_id == str(copy["id"])
            )
        )
    assert details is not None
    assert details["left_out"] == ["config.quiz.reward.lottery_activity_id"]


def test_only_staff_managing_the_activity_repeat_it(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.district_a1, Role.OPERATOR)
    source = create_activity(api, op.headers, tree.district_a1, publish=False)
    before = activity_count()
    for outsider in (
        make_staff(tree.city_b, Role.OPERATOR),
        make_staff(tree.grassroots_a1x, Role.OPERATOR),  # below: not theirs either
        make_staff(tree.city_a, Role.AUDITOR),
    ):
        resp = api.post(f"/api/v1/activities/{source['id']}/repeat", headers=outsider.headers)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "activity.not_found"
    assert api.post("/api/v1/activities/0/repeat", headers=op.headers).status_code == 422
    assert api.post("/api/v1/activities/999999/repeat", headers=op.headers).status_code == 404
    assert api.post(f"/api/v1/activities/{source['id']}/repeat").status_code == 401
    assert activity_count() == before

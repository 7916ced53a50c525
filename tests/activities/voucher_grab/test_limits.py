"""A voucher grab's limits over HTTP: per member (each stock's, the activity's total and
daily), and per org (``max_per_org``: how many coupons the members of one union may hold in
all), never passed under concurrency, and given back when WeChat Pay refuses a coupon."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import clock, tasks
from gonghui.activities.voucher_grab import waiting
from gonghui.activities.voucher_grab.models import OrgShare, VoucherClaim
from gonghui.db import unit_of_work
from gonghui.settings import get_settings
from tests.activities.conftest import Member, MemberFactory
from tests.activities.voucher_grab.conftest import (
    claim,
    grab,
    link_wechat,
    move_wechat_stock,
    my_claims,
    stocks,
)
from tests.fixtures import Tree


def linked(make_member: MemberFactory, org_id: int, n: int) -> list[Member]:
    members = [make_member(org_id) for _ in range(n)]
    for member in members:
        link_wechat(member)
    return members


def outcome(resp: httpx.Response) -> tuple[int, str]:
    body = resp.json()
    return resp.status_code, body.get("state") or body["error"]["code"]


def org_share(activity_id: int, org_id: int) -> int | None:
    with unit_of_work(read_only=True) as session:
        return session.scalar(
            select(OrgShare.claimed).where(
                OrgShare.activity_id == activity_id, OrgShare.org_id == org_id
            )
        )


def test_the_members_of_one_union_claim_at_most_its_share(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=10, max_per_org=2)
    first, second, third = linked(make_member, tree.grassroots_a1x, 3)
    (elsewhere,) = linked(make_member, tree.grassroots_b1, 1)
    (above,) = linked(make_member, tree.district_a1, 1)  # a union of its own

    assert outcome(claim(api, activity_id, stock_id, first)) == (201, "sending")
    assert outcome(claim(api, activity_id, stock_id, second)) == (201, "sending")
    over = claim(api, activity_id, stock_id, third)
    assert outcome(over) == (409, "vouchers.org_limit_reached")
    assert over.json()["error"]["details"] == {"max_per_org": 2}
    assert my_claims(api, third) == []
    assert outcome(claim(api, activity_id, stock_id, elsewhere)) == (201, "sending")
    assert outcome(claim(api, activity_id, stock_id, above)) == (201, "sending")

    assert stocks(api, activity_id, first)[0]["claimed"] == 4  # the refused one took none
    assert org_share(activity_id, tree.grassroots_a1x) == 2
    assert org_share(activity_id, tree.grassroots_b1) == 1
    assert org_share(activity_id, tree.district_a1) == 1
    # The refused member still has their own turn: it was never counted.
    assert [c["state"] for c in my_claims(api, first)] == ["sending"]


def test_a_coupon_wechat_pay_refuses_gives_back_the_unions_share_and_the_members_turns(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity_id, stock_id = grab(
        api, tree, operator, max_coupons=10, max_per_org=1, limits={"limit_per_day": 1}
    )
    first, second = linked(make_member, tree.grassroots_a1x, 2)
    move_wechat_stock(activity_id, "pause")  # WeChat Pay refuses its coupons (403)
    assert outcome(claim(api, activity_id, stock_id, first)) == (201, "sending")
    assert outcome(claim(api, activity_id, stock_id, second)) == (409, "vouchers.org_limit_reached")
    assert tasks.run_due() == 1  # the send waits for the stock
    monkeypatch.setattr(get_settings(), "voucher_send_max_wait_s", 60.0)
    clock.advance(timedelta(seconds=61))
    waiting.check_waiting()  # waited its longest: tried once more, refused
    assert tasks.run_due() == 1
    assert [c["state"] for c in my_claims(api, first)] == ["failed"]
    assert org_share(activity_id, tree.grassroots_a1x) == 0

    restarted = api.post(
        f"/api/v1/activities/{activity_id}/voucher-stocks/{stock_id}/restart", headers=operator
    )
    assert restarted.status_code == 200, restarted.text
    # The member's daily turn came back with the coupon: claiming again is allowed.
    assert outcome(claim(api, activity_id, stock_id, first)) == (201, "sending")
    assert outcome(claim(api, activity_id, stock_id, second)) == (409, "vouchers.org_limit_reached")
    assert tasks.run_due() == 1
    assert [c["state"] for c in my_claims(api, first)] == ["sent", "failed"]
    assert org_share(activity_id, tree.grassroots_a1x) == 1


def test_the_activitys_daily_limit_holds_across_stocks(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(
        api, tree, operator, max_coupons=10, max_per_member=3, limits={"limit_per_day": 2}
    )
    (member,) = linked(make_member, tree.grassroots_a1x, 1)
    answers = [outcome(claim(api, activity_id, stock_id, member)) for _ in range(3)]
    assert answers == [
        (201, "sending"),
        (201, "sending"),
        (409, "activities.limit_per_day_reached"),
    ]
    assert stocks(api, activity_id, member)[0]["claimed"] == 2


def test_many_members_of_one_union_claiming_at_once_never_pass_its_share(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=100, max_per_org=7)
    crowd = linked(make_member, tree.grassroots_a1x, 40)
    others = linked(make_member, tree.grassroots_b1, 5)

    def claim_one(member: Member) -> tuple[int, str]:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            return outcome(claim(client, activity_id, stock_id, member))

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(claim_one, crowd + others))
    mine, theirs = answers[:40], answers[40:]
    assert mine.count((201, "sending")) == 7
    assert mine.count((409, "vouchers.org_limit_reached")) == 33
    assert theirs == [(201, "sending")] * 5
    assert org_share(activity_id, tree.grassroots_a1x) == 7
    with unit_of_work(read_only=True) as session:
        held = session.execute(
            select(VoucherClaim.org_id, func.count())
            .where(VoucherClaim.activity_id == activity_id)
            .group_by(VoucherClaim.org_id)
        )
        assert dict(held.all()) == {tree.grassroots_a1x: 7, tree.grassroots_b1: 5}
    assert stocks(api, activity_id, crowd[0])[0]["claimed"] == 12

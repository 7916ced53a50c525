"""A voucher grab end to end over HTTP, through the WeChat Pay simulator: the stocks open
at WeChat Pay after publishing, members claim within the stock and their limits, each
claim is committed first and its coupon sent after (once, even when WeChat Pay's answer
is lost), and a coupon spent comes back as COUPON.USE into the ledger."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx

from gonghui import clock, tasks
from gonghui.activities.voucher_grab.claims import member_claims
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from tests.activities.conftest import Member, MemberFactory, create_activity, h5_get
from tests.activities.voucher_grab.conftest import (
    claim,
    claimants,
    faults,
    grab,
    grab_config,
    ledger,
    link_wechat,
    my_claims,
    stocks,
    wechat_stock,
)
from tests.fixtures import Tree


def test_a_member_claims_a_coupon_receives_it_and_spends_it(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity = create_activity(api, operator, tree.province, config=grab_config(), title="消费券")
    member = make_member(tree.district_a1)
    stock = stocks(api, activity["id"], member)[0]
    assert stock["status"] == "opening"  # not yet at WeChat Pay
    early = claim(api, activity["id"], stock["id"], member)
    assert (early.status_code, early.json()["error"]["code"]) == (409, "vouchers.stock_not_open")
    assert tasks.run_due() >= 1
    assert stocks(api, activity["id"], member)[0]["status"] == "running"
    assert wechat_stock(activity["id"])["status"] == "running"

    unlinked = claim(api, activity["id"], stock["id"], member)
    assert (unlinked.status_code, unlinked.json()["error"]["code"]) == (
        409,
        "vouchers.wechat_not_linked",
    )
    assert "WeChat" in unlinked.json()["error"]["message"]
    link_wechat(member)
    claimed = claim(api, activity["id"], stock["id"], member)
    assert claimed.status_code == 201, claimed.text
    assert (claimed.json()["state"], claimed.json()["coupon_id"]) == ("sending", None)
    assert [c["state"] for c in my_claims(api, member)] == ["sending"]
    again = claim(api, activity["id"], stock["id"], member)
    assert (again.status_code, again.json()["error"]["code"]) == (
        409,
        "vouchers.member_limit_reached",
    )

    assert tasks.run_due() == 1  # vouchers.send_coupon
    (sent,) = my_claims(api, member)
    assert sent["state"] == "sent"
    assert sent["coupon_id"]
    assert ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]
    assert stocks(api, activity["id"], member)[0]["claimed"] == 1

    spent = api.post(
        f"/_sim/wechatpay/_control/coupons/{sent['coupon_id']}/use", json={"duplicate": True}
    )
    assert spent.json()["statuses"] == [204, 204]
    (used,) = my_claims(api, member)
    assert used["state"] == "used"
    assert ledger(member.membership_id) == [
        ("issue", 1000, "wechatpay.coupon_sent"),
        ("redeem", -1000, "wechatpay.coupon_use"),
    ]


def test_a_send_whose_answer_is_lost_is_retried_and_sends_one_coupon(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator)
    (member,) = claimants(api, make_member, tree.district_a1, activity_id, stock_id)
    faults(api, "lost")  # WeChat Pay sends the coupon, its answer never arrives
    assert tasks.run_due() == 1
    assert [c["state"] for c in my_claims(api, member)] == ["sending"]
    assert ledger(member.membership_id) == []
    clock.advance(timedelta(hours=1))  # past the retry's backoff
    assert tasks.run_due() == 1
    (sent,) = my_claims(api, member)
    assert sent["state"] == "sent"
    assert sim.send_calls() == 2  # asked twice, with the same out_request_no
    assert wechat_stock(activity_id)["distributed_coupons"] == 1
    assert ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]


def test_two_hundred_concurrent_claims_never_pass_the_stock(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=150)
    members = [make_member(tree.district_a1) for _ in range(200)]
    for member in members:
        link_wechat(member)

    def claim_one(member: Member) -> tuple[int, str]:
        with httpx.Client(base_url=str(api.base_url), timeout=60) as client:
            resp = claim(client, activity_id, stock_id, member)
            body = resp.json()
            return resp.status_code, body.get("state") or body["error"]["code"]

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(claim_one, members))
    assert answers.count((201, "sending")) == 150
    assert answers.count((409, "vouchers.stock_empty")) == 50
    while tasks.run_due():
        pass
    assert wechat_stock(activity_id)["distributed_coupons"] == 150
    states = [c["state"] for m in members for c in my_claims(api, m)]
    assert states == ["sent"] * 150
    assert stocks(api, activity_id, members[0])[0]["claimed"] == 150


def test_a_grab_lists_only_the_members_claims_of_that_grab(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    first, first_stock = grab(api, tree, operator)
    second, _ = grab(api, tree, operator)
    member = make_member(tree.district_a1)
    link_wechat(member)
    assert claim(api, first, first_stock, member).status_code == 201
    with unit_of_work(read_only=True) as session:
        of_first = member_claims(session, membership_id=member.membership_id, activity_id=first)
        of_second = member_claims(session, membership_id=member.membership_id, activity_id=second)
    assert [(c["activity_id"], c["stock_id"]) for c in of_first] == [(first, first_stock)]
    assert of_second == []
    assert len(my_claims(api, member)) == 1  # every grab's, without an activity


def test_a_members_page_follows_her_claim_and_no_one_elses(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator)
    other_grab, other_stock = grab(api, tree, operator)
    member, other = make_member(tree.district_a1), make_member(tree.district_a1)
    link_wechat(member)
    assert claim(api, other_grab, other_stock, member).status_code == 201
    claimed = claim(api, activity_id, stock_id, member)
    assert claimed.status_code == 201, claimed.text
    line = f"/h5/voucher-claims/{claimed.json()['id']}"

    sending = h5_get(api, member, line)
    assert sending.status_code == 200, sending.text
    assert "正在发放" in sending.text
    assert f'hx-get="{line}?n=1"' in sending.text
    assert "my-coupons" not in sending.text  # her list changes only once the send is done
    tasks.run_due()
    sent = h5_get(api, member, f"{line}?n=1")
    assert "已到账（微信卡包）" in sent.text
    assert "hx-get" not in sent.text
    # Its last answer brings her coupons for the list on the page: the grab's on its page,
    # every one in the voucher centre (which says so with ``coupons=all``).
    listed = re.search(
        r'<div id="my-coupons"[^>]*hx-swap-oob="true"[^>]*>(.*?)</div>', sent.text, re.S
    )
    assert listed is not None, sent.text
    assert listed[1].count("<article") == 1
    assert "已到账（微信卡包）" in listed[1]
    every = h5_get(api, member, f"{line}?n=1&coupons=all")
    assert every.text.count('<article class="card coupon"') == 2
    assert h5_get(api, member, f"{line}?coupons=some").status_code == 422
    # Another member, or a claim that does not exist, learns nothing.
    assert h5_get(api, other, line).status_code == 404
    assert h5_get(api, member, f"/h5/voucher-claims/{claimed.json()['id'] + 1}").status_code == 404
    assert h5_get(api, member, f"{line}?n=1001").status_code == 422

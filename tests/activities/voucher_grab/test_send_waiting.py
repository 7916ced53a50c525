"""Coupon sends whose stock is paused wait for it over HTTP, through the WeChat Pay
simulator: paused by an operator here or at WeChat Pay itself, the send is held (no call,
no retry, no failure) and its operators count it; it goes as the stock restarts, by the
operator's restart or by the periodic look at WeChat Pay; past the bound it is tried once
more and, refused, fails and gives its coupon back. A refusal while the stock runs still
fails at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from gonghui import clock, tasks
from gonghui.activities.voucher_grab import waiting
from gonghui.activities.voucher_grab.models import VoucherClaim
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.settings import get_settings
from tests.activities.conftest import MemberFactory
from tests.activities.voucher_grab.conftest import (
    claim,
    claimants,
    grab,
    ledger,
    link_wechat,
    move_wechat_stock,
    my_claims,
    stocks,
    wechat_stock,
)
from tests.fixtures import Tree


def move(
    api: httpx.Client, operator: dict[str, str], activity_id: int, stock_id: int, step: str
) -> None:
    resp = api.post(
        f"/api/v1/activities/{activity_id}/voucher-stocks/{stock_id}/{step}", headers=operator
    )
    assert resp.status_code == 200, resp.text


def figures(api: httpx.Client, operator: dict[str, str], activity_id: int) -> dict[str, Any]:
    resp = api.get(f"/api/v1/activities/{activity_id}/voucher-dashboard", headers=operator)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def counts(body: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return body["left"], body["sending"], body["waiting"], body["sent"], body["failed"]


def test_a_send_waits_while_an_operator_pauses_its_stock_and_goes_as_it_restarts(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=3)
    (member,) = claimants(api, make_member, tree.district_a1, activity_id, stock_id)
    move(api, operator, activity_id, stock_id, "pause")

    assert tasks.run_due() == 1  # the send: held, not sent, not failed
    assert sim.send_calls() == 0
    assert [c["state"] for c in my_claims(api, member)] == ["waiting"]
    assert counts(figures(api, operator, activity_id)) == (2, 0, 1, 0, 0)
    clock.advance(timedelta(minutes=10))  # past any retry's backoff
    assert tasks.run_due() == 0  # nothing retried meanwhile

    move(api, operator, activity_id, stock_id, "restart")
    assert [c["state"] for c in my_claims(api, member)] == ["sending"]
    assert tasks.run_due() == 1
    (sent,) = my_claims(api, member)
    assert (sent["state"], sim.send_calls()) == ("sent", 1)
    assert ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]
    assert counts(figures(api, operator, activity_id)) == (2, 0, 0, 1, 0)
    with unit_of_work(read_only=True) as session:
        restart = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "vouchers.stock_restart")
        ).one()
    assert restart["sends_resumed"] == 1


def test_a_stock_paused_at_wechat_pay_holds_its_sends_until_it_runs_there_again(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=3)
    members = claimants(api, make_member, tree.district_a1, activity_id, stock_id, 2)
    move_wechat_stock(activity_id, "pause")  # by the merchant, not through gonghui

    assert tasks.run_due() == 2  # refused; WeChat Pay, asked, says the stock is paused
    assert [c["state"] for m in members for c in my_claims(api, m)] == ["waiting"] * 2
    assert stocks(api, activity_id, members[0])[0]["status"] == "paused"  # here too
    late = make_member(tree.district_a1)
    link_wechat(late)
    refused = claim(api, activity_id, stock_id, late)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "vouchers.stock_paused")

    waiting.check_waiting()  # still paused at WeChat Pay: nothing moves
    assert [c["state"] for m in members for c in my_claims(api, m)] == ["waiting"] * 2
    move_wechat_stock(activity_id, "restart")
    waiting.check_waiting()
    assert stocks(api, activity_id, members[0])[0]["status"] == "running"
    assert tasks.run_due() == 2
    coupons = {c["coupon_id"] for m in members for c in my_claims(api, m) if c["state"] == "sent"}
    assert len(coupons) == 2
    assert wechat_stock(activity_id)["distributed_coupons"] == 2
    assert counts(figures(api, operator, activity_id)) == (1, 0, 0, 2, 0)


def test_a_send_that_waited_too_long_is_refused_fails_and_gives_its_coupon_back(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ten minutes at most, within the tokens' lifetime (the default is hours).
    monkeypatch.setattr(get_settings(), "voucher_send_max_wait_s", 600.0)
    activity_id, stock_id = grab(api, tree, operator, max_coupons=3)
    (member,) = claimants(api, make_member, tree.district_a1, activity_id, stock_id)
    move_wechat_stock(activity_id, "pause")
    assert tasks.run_due() == 1
    calls = sim.send_calls()
    assert [c["state"] for c in my_claims(api, member)] == ["waiting"]

    clock.advance(timedelta(seconds=get_settings().voucher_send_max_wait_s - 60))
    waiting.check_waiting()  # not yet
    assert tasks.run_due() == 0
    clock.advance(timedelta(seconds=61))
    waiting.check_waiting()  # tried one last time: refused
    assert tasks.run_due() == 1
    assert sim.send_calls() == calls + 1
    assert [c["state"] for c in my_claims(api, member)] == ["failed"]
    assert stocks(api, activity_id, member)[0]["claimed"] == 0
    assert ledger(member.membership_id) == []
    assert counts(figures(api, operator, activity_id)) == (3, 0, 0, 0, 1)

    move(api, operator, activity_id, stock_id, "restart")
    again = claim(api, activity_id, stock_id, member)  # the member's turn was given back
    assert again.status_code == 201, again.text
    assert tasks.run_due() == 1
    assert [c["state"] for c in my_claims(api, member)] == ["sent", "failed"]


def test_a_send_refused_while_its_stock_runs_fails_at_once(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=3)
    first, second = make_member(tree.district_a1), make_member(tree.district_a1)
    openid = link_wechat(first)
    link_wechat(second)
    assert claim(api, activity_id, stock_id, first).status_code == 201
    assert claim(api, activity_id, stock_id, second).status_code == 201
    with unit_of_work() as session:  # both to one WeChat user, whose limit at WeChat Pay is 1
        session.execute(
            update(VoucherClaim)
            .where(VoucherClaim.membership_id == second.membership_id)
            .values(openid=openid)
        )
    assert tasks.run_due() == 2
    # Sent concurrently: whichever WeChat Pay took first is sent, the other refused.
    outcomes = {m.membership_id: [c["state"] for c in my_claims(api, m)] for m in (first, second)}
    assert sorted(outcomes.values()) == [["failed"], ["sent"]]
    assert stocks(api, activity_id, first)[0]["claimed"] == 1
    (loser,) = [m for m in (first, second) if outcomes[m.membership_id] == ["failed"]]
    assert ledger(loser.membership_id) == []
    assert counts(figures(api, operator, activity_id)) == (2, 0, 0, 1, 1)

"""Operators pause and restart a voucher stock over HTTP, through the WeChat Pay simulator:
WeChat Pay moves first and the stock here follows; a paused stock refuses claims; WeChat
Pay failing leaves the stock as it was; every move is audited; others cannot move it."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from gonghui.activities.voucher_grab.models import VoucherStock
from gonghui.activities.voucher_grab.stocks import list_stocks
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory
from tests.activities.voucher_grab.conftest import (
    claim,
    faults,
    grab,
    link_wechat,
    stocks,
    wechat_stock,
)
from tests.fixtures import StaffFactory, Tree


def move(
    api: httpx.Client, headers: dict[str, str], activity_id: int, stock_id: int, step: str
) -> httpx.Response:
    return api.post(
        f"/api/v1/activities/{activity_id}/voucher-stocks/{stock_id}/{step}", headers=headers
    )


def stock_audits() -> list[tuple[str, str]]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.subject_id)
            .where(AuditEntry.subject_type == "voucher_stock")
            .order_by(AuditEntry.id)
        )
        return [(a, str(s)) for a, s in rows]


def test_an_operator_pauses_a_stock_members_are_refused_then_restarts_it(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=5)
    member = make_member(tree.district_a1)
    link_wechat(member)

    paused = move(api, operator, activity_id, stock_id, "pause")
    assert paused.status_code == 200, paused.text
    assert (paused.json()["id"], paused.json()["status"]) == (stock_id, "paused")
    assert wechat_stock(activity_id)["status"] == "paused"
    assert stocks(api, activity_id, member)[0]["status"] == "paused"
    refused = claim(api, activity_id, stock_id, member)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "vouchers.stock_paused")
    assert "paused" in refused.json()["error"]["message"]
    assert stocks(api, activity_id, member)[0]["claimed"] == 0

    twice = move(api, operator, activity_id, stock_id, "pause")
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "vouchers.stock_bad_state")

    restarted = move(api, operator, activity_id, stock_id, "restart")
    assert restarted.status_code == 200, restarted.text
    assert restarted.json()["status"] == "running"
    assert wechat_stock(activity_id)["status"] == "running"
    assert claim(api, activity_id, stock_id, member).status_code == 201
    assert stock_audits() == [
        ("vouchers.stock_pause", str(stock_id)),
        ("vouchers.stock_restart", str(stock_id)),
    ]


def test_wechat_pay_failing_leaves_the_stock_unchanged_and_says_so(
    api: httpx.Client, tree: Tree, operator: dict[str, str]
) -> None:
    activity_id, stock_id = grab(api, tree, operator)

    faults(api, "timeout", "timeout", "timeout")  # the client's own retries meet no answer
    unanswered = move(api, operator, activity_id, stock_id, "pause")
    assert (unanswered.status_code, unanswered.json()["error"]["code"]) == (
        503,
        "vouchers.wechatpay_unavailable",
    )
    assert "unchanged" in unanswered.json()["error"]["message"]
    faults(api)
    with unit_of_work(read_only=True) as session:
        assert [s.status for s in list_stocks(session, activity_id=activity_id)] == ["running"]
    assert stock_audits() == []

    # WeChat Pay paused it but its answer was lost: asked again, both agree.
    faults(api, "lost")
    lost = move(api, operator, activity_id, stock_id, "pause")
    assert lost.status_code in (200, 503), lost.text
    if lost.status_code == 503:
        faults(api)
        again = move(api, operator, activity_id, stock_id, "pause")
        assert again.status_code == 200, again.text
    assert wechat_stock(activity_id)["status"] == "paused"
    assert stock_audits() == [("vouchers.stock_pause", str(stock_id))]


def test_wechat_pay_refusing_a_move_leaves_the_stock_unchanged(
    api: httpx.Client, tree: Tree, operator: dict[str, str]
) -> None:
    activity_id, stock_id = grab(api, tree, operator)
    with unit_of_work() as session:
        row = session.get(VoucherStock, stock_id)
        assert row is not None
        row.wechat_stock_id = "0000000001"  # a stock WeChat Pay does not know
    refused = move(api, operator, activity_id, stock_id, "pause")
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        502,
        "vouchers.wechatpay_refused",
    )
    assert "unchanged" in refused.json()["error"]["message"]
    with unit_of_work(read_only=True) as session:
        stock = session.get(VoucherStock, stock_id)
        assert stock is not None
        assert stock.status == "running"
    assert stock_audits() == []


def test_only_operators_of_the_campaigns_org_move_its_stocks(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    activity_id, stock_id = grab(api, tree, operator)  # a grab of the province
    below = make_staff(tree.city_a, Role.OPERATOR).headers
    auditor = make_staff(tree.province, Role.AUDITOR).headers
    member = make_member(tree.district_a1)
    for headers, code in ((below, 404), (auditor, 404), (member.headers, 403)):
        resp = move(api, headers, activity_id, stock_id, "pause")
        assert resp.status_code == code, resp.text
    other = move(api, operator, activity_id + 1000, stock_id, "pause")
    assert other.status_code == 404
    assert wechat_stock(activity_id)["status"] == "running"
    assert stock_audits() == []

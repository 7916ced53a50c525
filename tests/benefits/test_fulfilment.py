"""Operators ship physical prizes; unclaimed ones are forfeited after the deadline."""

from __future__ import annotations

from datetime import timedelta

import httpx
from typer.testing import CliRunner

from gonghui import clock
from gonghui.audit.models import AuditEntry
from gonghui.benefits.fulfilment import forfeit_unclaimed
from gonghui.benefits.models import LedgerEntry
from gonghui.cli import app
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory, create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree

ADDRESS = {"name": "张三", "phone": "13800138000", "address": "广州市天河区软件路1号"}


def test_operator_ships_a_claimed_prize_and_unclaimed_ones_are_forfeited(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = lottery_config(
        [{"name": "电饭煲", "kind": "physical", "weight": 1, "stock": 5}],
        address_deadline_hours=24,
    )
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    claimer, sleeper = make_member(tree.city_a, name="张三"), make_member(tree.city_a)
    prize_ids = []
    for member in (claimer, sleeper):
        drawn = api.post(f"/api/v1/activities/{activity['id']}/draws", headers=member.headers)
        prize_ids.append(int(drawn.json()["benefit"].split(":")[1]))
    api.post(f"/api/v1/me/prizes/{prize_ids[0]}/address", json=ADDRESS, headers=claimer.headers)

    base = f"/api/v1/activities/{activity['id']}/prizes"
    lines = api.get(base, headers=op.headers).json()
    assert [(x["prize"]["status"], x["winner"], x["address"]) for x in lines] == [
        ("to_ship", "张*", {"name": "张*", "phone": "138****8000", "address": "广州市天河区***"}),
        ("awaiting_address", lines[1]["winner"], None),
    ]
    revealed = api.get(base, params={"reveal": "true"}, headers=op.headers).json()
    assert revealed[0]["address"] == ADDRESS
    with unit_of_work() as session:
        unmasks = session.query(AuditEntry).filter_by(action="pii.unmask").all()
        assert [(a.actor_user_id, a.field) for a in unmasks] == [(op.user_id, "prize_address")]

    shipped = api.post(f"{base}/{prize_ids[0]}/ship", headers=op.headers)
    assert shipped.json()["status"] == "shipped"
    again = api.post(f"{base}/{prize_ids[0]}/ship", headers=op.headers)
    assert again.status_code == 409
    assert api.post(f"{base}/{prize_ids[1]}/ship", headers=op.headers).status_code == 409

    op_b = make_staff(tree.city_b, Role.OPERATOR)
    assert api.get(base, headers=op_b.headers).status_code == 404
    assert api.post(f"{base}/{prize_ids[1]}/ship", headers=op_b.headers).status_code == 404

    clock.advance(timedelta(hours=25))
    result = CliRunner().invoke(app, ["benefits", "sweep"])
    assert result.exit_code == 0, result.output
    assert "forfeited 1 prizes" in result.output
    with unit_of_work() as session:
        assert forfeit_unclaimed(session) == 0
        rows = session.query(LedgerEntry).filter_by(prize_id=prize_ids[1]).order_by("id").all()
        assert [(str(r.action), r.amount) for r in rows] == [("issue", 1), ("expire", -1)]
    prizes = api.get("/api/v1/me/wallet", headers=sleeper.headers).json()["prizes"]
    assert [p["status"] for p in prizes] == ["forfeited"]


def test_a_prize_shipped_with_its_courier_shows_the_tracking_number_in_the_wallet(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = lottery_config(
        [{"name": "电饭煲", "kind": "physical", "weight": 1, "stock": 5}], address_deadline_hours=24
    )
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    winner = make_member(tree.city_a)
    drawn = api.post(f"/api/v1/activities/{activity['id']}/draws", headers=winner.headers)
    prize_id = int(drawn.json()["benefit"].split(":")[1])
    api.post(f"/api/v1/me/prizes/{prize_id}/address", json=ADDRESS, headers=winner.headers)
    ship = f"/api/v1/activities/{activity['id']}/prizes/{prize_id}/ship"
    bad = api.post(ship, json={"courier_company": "顺丰", "courier_no": "x"}, headers=op.headers)
    assert bad.status_code == 422
    body = {"courier_company": "顺丰速运", "courier_no": "SF1234567890"}
    shipped = api.post(ship, json=body, headers=op.headers).json()
    assert (shipped["status"], shipped["courier_company"], shipped["courier_no"]) == (
        "shipped",
        "顺丰速运",
        "SF1234567890",
    )
    assert shipped["shipped_at"] is not None
    prizes = api.get("/api/v1/me/wallet", headers=winner.headers).json()["prizes"]
    assert [(p["status"], p["courier_no"]) for p in prizes] == [("shipped", "SF1234567890")]
    with unit_of_work() as session:
        row = session.query(AuditEntry).filter_by(action="benefits.ship_prize").one()
        assert row.details == body

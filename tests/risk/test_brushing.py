"""Scripted brushing: one network acting from many accounts is flagged and challenged;
honest members on networks of their own, at a person's pace, are not."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from gonghui import clock
from gonghui.activities.lottery.models import Draw
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    draw,
    lottery_config,
    staff_headers,
)
from tests.fixtures import StaffFactory, Tree
from tests.risk.conftest import (
    ClientFrom,
    answered,
    challenge_of,
    device,
    fetch_picture,
    set_limits,
)

FARM = "127.0.66.{}"  # one /24


def _draws(activity_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).where(Draw.activity_id == activity_id)) or 0)


def _lottery(api: httpx.Client, operator: dict[str, str], org_id: int) -> int:
    prizes = [{"name": "谢谢参与", "kind": "none", "weight": 1}]
    config = lottery_config(prizes, free_draws_per_day=3)
    return int(create_activity(api, operator, org_id, config=config)["id"])


def test_one_network_brushing_many_accounts_is_flagged_and_challenged_honest_members_are_not(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    activity_id = _lottery(api, operator, tree.city_a)
    set_limits(api, operator, activity_id, network_accounts=5)
    farm = [make_member(tree.city_a) for _ in range(8)]
    honest = [make_member(tree.city_a) for _ in range(6)]

    answers = []
    for i, (bot, person) in enumerate(zip(farm, honest + honest[:2], strict=True)):
        # The script rotates addresses within its /24 and sends a device id per account.
        answers.append(
            draw(client_from(FARM.format(10 + i)), activity_id, {**bot.headers, **device()})
        )
        if i < len(honest):
            own_network = client_from(f"127.0.{100 + i}.7")
            resp = draw(own_network, activity_id, {**person.headers, **device()})
            assert resp.status_code == 200, resp.text

    assert [r.status_code for r in answers] == [200] * 5 + [403] * 3
    for resp in answers[5:]:
        details = resp.json()["error"]["details"]
        assert "network_accounts" in details["reasons"] or "network_flagged" in details["reasons"]
        assert details["image_url"] == f"/api/v1/risk/challenges/{details['challenge_id']}/image"
    assert _draws(activity_id) == 5 + 6

    flags = api.get("/api/v1/risk/flags", headers=operator).json()
    assert len(flags) == 1
    (flag,) = flags
    assert (flag["kind"], flag["subject"], flag["status"]) == (
        "network_accounts",
        "net:127.0.66.0/24",
        "open",
    )
    assert flag["activity_id"] == activity_id
    assert flag["evidence"]["accounts"] == 6
    assert flag["evidence"]["threshold"] == 5

    # Flagged, the network is challenged even for an account that drew before...
    again = draw(client_from(FARM.format(200)), activity_id, {**farm[0].headers, **device()})
    assert "network_flagged" in again.json()["error"]["details"]["reasons"]
    # ...and honest members elsewhere still draw, unchallenged.
    resp = draw(client_from("127.0.120.1"), activity_id, {**honest[0].headers, **device()})
    assert resp.status_code == 200, resp.text
    assert _draws(activity_id) == 5 + 6 + 1


def test_a_solved_challenge_lets_the_member_through_for_a_while(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    activity_id = _lottery(api, operator, tree.city_a)
    set_limits(api, operator, activity_id, network_accounts=2)
    client = client_from(FARM.format(1))
    members = [make_member(tree.city_a) for _ in range(3)]
    phone = device()
    for m in members[:2]:
        assert draw(client, activity_id, {**m.headers, **device()}).status_code == 200
    third = {**members[2].headers, **phone}
    challenge_id = challenge_of(draw(client, activity_id, third))
    fetch_picture(client, challenge_id, members[2].headers)
    resp = draw(client, activity_id, {**third, **answered(challenge_id)})
    assert resp.status_code == 200, resp.text
    # Within the pass (10 minutes by default) no more pictures for this account.
    resp = draw(client, activity_id, third)
    assert resp.status_code == 200, resp.text
    assert _draws(activity_id) == 4


def test_operator_dismisses_a_flag_of_a_companys_shared_address_and_its_members_act(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    elsewhere = make_staff(tree.city_b, Role.OPERATOR).headers
    activity_id = _lottery(api, operator, tree.city_a)
    set_limits(api, operator, activity_id, network_accounts=2)
    client = client_from(FARM.format(3))
    members = [make_member(tree.city_a) for _ in range(4)]
    outcomes = [draw(client, activity_id, {**m.headers, **device()}).status_code for m in members]
    assert outcomes == [200, 200, 403, 403]

    assert api.get("/api/v1/risk/flags", headers=elsewhere).json() == []
    (flag,) = api.get("/api/v1/risk/flags?status=open", headers=operator).json()
    resp = api.post(
        f"/api/v1/risk/flags/{flag['id']}/review",
        json={"decision": "dismissed", "note": "园区工会的共享出口"},
        headers=elsewhere,
    )
    assert resp.status_code == 404, resp.text  # another city's operator: not found
    resp = api.post(
        f"/api/v1/risk/flags/{flag['id']}/review",
        json={"decision": "dismissed", "note": "园区工会的共享出口"},
        headers=operator,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "dismissed"
    again = api.post(
        f"/api/v1/risk/flags/{flag['id']}/review", json={"decision": "confirmed"}, headers=operator
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "risk.flag_reviewed"

    with unit_of_work(read_only=True) as session:
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "risk.flag_dismissed")
        ).all()
    assert [(a.subject_id, a.reason) for a in audited] == [(str(flag["id"]), "园区工会的共享出口")]

    outcomes = [draw(client, activity_id, {**m.headers, **device()}).status_code for m in members]
    assert outcomes == [200, 200, 200, 200]


def test_flags_pause_the_activity_at_the_operators_threshold(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    activity_id = _lottery(api, operator, tree.city_a)
    limits = set_limits(api, operator, activity_id, network_accounts=2, pause_after_flags=1)
    assert limits["pause_after_flags"] == 1
    client = client_from(FARM.format(4))
    members = [make_member(tree.city_a) for _ in range(3)]
    outcomes = [draw(client, activity_id, {**m.headers, **device()}).status_code for m in members]
    assert outcomes == [200, 200, 403]

    activity = api.get(f"/api/v1/activities/{activity_id}", headers=operator).json()
    assert activity["status"] == "paused"
    honest = make_member(tree.city_a)
    resp = draw(client_from("127.0.130.1"), activity_id, {**honest.headers, **device()})
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"]["code"] == "activities.not_live"
    assert _draws(activity_id) == 2
    with unit_of_work(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_id == str(activity_id))
            .order_by(AuditEntry.id)
        ).all()
    assert actions[-2:] == ["activities.pause", "risk.auto_pause"]
    # The operator looks, and resumes.
    assert api.post(f"/api/v1/activities/{activity_id}/resume", headers=operator).status_code == 200
    resp = draw(client_from("127.0.130.1"), activity_id, {**honest.headers, **device()})
    assert resp.status_code == 200, resp.text


def test_limits_are_set_by_the_activitys_operators_only_and_audited(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    elsewhere = make_staff(tree.city_b, Role.OPERATOR).headers
    activity_id = _lottery(api, operator, tree.city_a)
    defaults = api.get(f"/api/v1/activities/{activity_id}/risk-limits", headers=operator).json()
    assert defaults["account"] == {"challenge": 20, "refuse": 60}
    assert defaults["network_accounts"] == 30
    resp = api.put(
        f"/api/v1/activities/{activity_id}/risk-limits", json={"pass_s": 0}, headers=elsewhere
    )
    assert resp.status_code == 404
    resp = api.put(
        f"/api/v1/activities/{activity_id}/risk-limits",
        json={"network_accounts": 1},
        headers=operator,
    )
    assert resp.status_code == 422
    set_limits(api, operator, activity_id, account={"challenge": 3, "refuse": 5})
    with unit_of_work(read_only=True) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "risk.set_limits")
        ).one()
    assert entry.details is not None
    assert entry.details["account"] == {"challenge": 3, "refuse": 5}


def test_a_wave_of_freshly_verified_accounts_is_flagged_and_older_ones_do_not_count(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    staff = make_staff(tree.city_a, Role.OPERATOR)
    activity_id = _lottery(api, staff.headers, tree.city_a)
    set_limits(api, staff.headers, activity_id, fresh_account_actions=3)
    veterans = [make_member(tree.city_a) for _ in range(4)]
    clock.advance(timedelta(hours=2))
    for i, member in enumerate(veterans):
        resp = draw(client_from(f"127.0.{140 + i}.1"), activity_id, {**member.headers, **device()})
        assert resp.status_code == 200, resp.text
    assert api.get("/api/v1/risk/flags", headers=staff_headers(staff)).json() == []

    newcomers = [make_member(tree.city_a) for _ in range(5)]
    for i, member in enumerate(newcomers):
        resp = draw(client_from(f"127.0.{150 + i}.1"), activity_id, {**member.headers, **device()})
        assert resp.status_code == 200, resp.text  # a flag for review, not a challenge
    (flag,) = api.get("/api/v1/risk/flags", headers=staff_headers(staff)).json()
    assert (flag["kind"], flag["subject"]) == ("fresh_accounts", f"fresh:{activity_id}")
    assert flag["evidence"]["actions"] == 4
    assert flag["evidence"]["threshold"] == 3

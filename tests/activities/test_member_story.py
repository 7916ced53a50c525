"""The whole member story over HTTP: verified, opens the hub, passes the quiz, earns
chances, draws, and finds the prize in the wallet and the ledger."""

from __future__ import annotations

import httpx

from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import (
    add_questions,
    answers_for,
    create_activity,
    id_number,
    quiz_lottery_config,
)
from tests.fixtures import StaffFactory, Tree


def test_member_verifies_quizzes_draws_and_finds_the_prize(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    activity = create_activity(
        api,
        op.headers,
        tree.city_a,
        title="学法答题抽好礼",
        config=quiz_lottery_config(),
    )
    # The roster lists her; she signs in (a session) and verifies against it.
    with unit_of_work() as session:
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_a1x, name="陈静", id_number=id_number(900)
        )
        user = create_user(session, display_name="陈静")
        tokens = start_session(session, user=user)
    headers = {"Authorization": f"Bearer {tokens.access_token}"}
    assert api.get("/api/v1/hub", headers=headers).status_code == 403
    with unit_of_work() as session:
        members.verify(session, user_id=user.id, name="陈静", id_number=id_number(900))

    hub = api.get("/api/v1/hub", headers=headers).json()
    assert [(i["title"], i["me"]["chances_left"], i["eligible"]) for i in hub["items"]] == [
        ("学法答题抽好礼", 0, True)
    ]
    aid = hub["items"][0]["id"]
    assert aid == activity["id"]
    assert api.post(f"/api/v1/activities/{aid}/draws", headers=headers).status_code == 409

    attempt = api.post(f"/api/v1/activities/{aid}/quiz/attempts", headers=headers).json()
    result = api.post(
        f"/api/v1/quiz/attempts/{attempt['attempt_id']}/submit",
        json={"answers": answers_for(attempt)},
        headers={**headers, "Idempotency-Key": "quiz-1"},
    ).json()
    assert (result["score"], result["passed"], result["reward"]) == (100, True, f"chances:1@{aid}")
    hub = api.get("/api/v1/hub", headers=headers).json()
    assert hub["items"][0]["me"] == {"joined": True, "chances_left": 1, "prizes_won": 0}

    drawn = api.post(
        f"/api/v1/activities/{aid}/draws",
        json={"entropy": "my-phone-random"},
        headers={**headers, "Idempotency-Key": "draw-1"},
    ).json()
    assert drawn["outcome"] == "won"
    assert drawn["prize"]["name"] == "二十元券"
    voucher_id = int(drawn["benefit"].split(":")[1])

    wallet = api.get("/api/v1/me/wallet", headers=headers).json()
    assert [(v["id"], v["name"], v["value_cents"]) for v in wallet["vouchers"]] == [
        (voucher_id, "二十元券", 2000)
    ]
    ledger = api.get("/api/v1/me/ledger", headers=headers).json()["items"]
    assert [(e["kind"], e["action"], e["amount"], e["voucher_id"]) for e in ledger] == [
        ("voucher", "issue", 2000, voucher_id)
    ]
    hub = api.get("/api/v1/hub", headers=headers).json()
    assert hub["items"][0]["me"] == {"joined": True, "chances_left": 0, "prizes_won": 1}
    winners = api.get(f"/api/v1/public/lotteries/{aid}/winners").json()
    assert [(w["name"], w["prize"]) for w in winners] == [("陈*", "二十元券")]

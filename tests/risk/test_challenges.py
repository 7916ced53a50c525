"""The challenge step: a picture fetched, answered once, before it expires, within a few
wrong answers; refused actions leave nothing behind."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from gonghui import clock
from gonghui.activities.lottery.models import Draw
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.risk import challenges
from gonghui.risk.models import Challenge
from tests.activities.conftest import Member, MemberFactory, create_activity, draw, lottery_config
from tests.fixtures import StaffFactory, Tree
from tests.risk.conftest import (
    ANSWER,
    ClientFrom,
    answered,
    challenge_of,
    device,
    fetch_picture,
    set_limits,
)

# A request from a network of its own without a device id is challenged (the H5 always
# sends one); each test's lottery needs a challenge for every action (no pass).
AWAY = "127.0.77.5"


def _draws(activity_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).where(Draw.activity_id == activity_id)) or 0)


def _setup(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> tuple[int, Member]:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    prizes = [{"name": "谢谢参与", "kind": "none", "weight": 1}]
    config = lottery_config(prizes, free_draws_per_day=5)
    activity_id = int(create_activity(api, operator, tree.city_a, config=config)["id"])
    set_limits(api, operator, activity_id, pass_s=0)
    return activity_id, make_member(tree.city_a)


def test_a_wrong_answer_refuses_then_the_right_one_draws_once(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    activity_id, member = _setup(api, tree, make_staff, make_member)
    client = client_from(AWAY)
    resp = draw(client, activity_id, member.headers)
    challenge_id = challenge_of(resp)
    assert resp.json()["error"]["details"]["reasons"] == ["no_device_id"]
    first = fetch_picture(client, challenge_id, member.headers)
    assert first != fetch_picture(client, challenge_id, member.headers)  # a new picture

    wrong = draw(client, activity_id, {**member.headers, **answered(challenge_id, "AAAAA")})
    assert wrong.status_code == 409
    assert wrong.json()["error"]["code"] == "risk.challenge_wrong"
    assert wrong.json()["error"]["details"] == {"attempts_left": 4}
    assert _draws(activity_id) == 0

    # Answers are compared without regard to case.
    right = answered(challenge_id, ANSWER.lower())
    resp = draw(client, activity_id, {**member.headers, **right})
    assert resp.status_code == 200, resp.text
    assert _draws(activity_id) == 1
    with unit_of_work(read_only=True) as session:
        (row,) = session.scalars(select(Challenge)).all()
    assert ANSWER not in row.answer_hash
    assert len(row.answer_hash) == 64
    assert (row.attempts, row.renders, row.solved_at is not None) == (1, 2, True)

    # Used once: the same id and answer again is refused, and no draw is made.
    reuse = draw(client, activity_id, {**member.headers, **answered(challenge_id)})
    assert reuse.status_code == 409
    assert reuse.json()["error"]["code"] == "risk.challenge_expired"
    assert _draws(activity_id) == 1
    picture = client.get(f"/api/v1/risk/challenges/{challenge_id}/image", headers=member.headers)
    assert picture.status_code == 409


def test_a_challenge_expires(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    activity_id, member = _setup(api, tree, make_staff, make_member)
    client = client_from(AWAY)
    challenge_id = challenge_of(draw(client, activity_id, member.headers))
    fetch_picture(client, challenge_id, member.headers)
    clock.advance(timedelta(seconds=301))
    resp = draw(client, activity_id, {**member.headers, **answered(challenge_id)})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "risk.challenge_expired"
    picture = client.get(f"/api/v1/risk/challenges/{challenge_id}/image", headers=member.headers)
    assert picture.json()["error"]["code"] == "risk.challenge_expired"
    assert _draws(activity_id) == 0
    # Acting again brings a new challenge, which works.
    fresh = challenge_of(draw(client, activity_id, member.headers))
    fetch_picture(client, fresh, member.headers)
    resp = draw(client, activity_id, {**member.headers, **answered(fresh)})
    assert resp.status_code == 200, resp.text


def test_five_wrong_answers_spend_a_challenge(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    activity_id, member = _setup(api, tree, make_staff, make_member)
    client = client_from(AWAY)
    challenge_id = challenge_of(draw(client, activity_id, member.headers))
    fetch_picture(client, challenge_id, member.headers)
    left = []
    for _ in range(5):
        resp = draw(client, activity_id, {**member.headers, **answered(challenge_id, "XXXXX")})
        left.append(resp.json()["error"]["details"]["attempts_left"])
    assert left == [4, 3, 2, 1, 0]
    resp = draw(client, activity_id, {**member.headers, **answered(challenge_id)})
    assert resp.json()["error"]["code"] == "risk.challenge_expired"
    assert _draws(activity_id) == 0


def test_a_challenge_is_its_members_only_and_not_forgeable(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    activity_id, member = _setup(api, tree, make_staff, make_member)
    other = make_member(tree.city_a)
    client = client_from(AWAY)
    challenge_id = challenge_of(draw(client, activity_id, member.headers))
    resp = client.get(f"/api/v1/risk/challenges/{challenge_id}/image", headers=other.headers)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "risk.challenge_invalid"
    fetch_picture(client, challenge_id, member.headers)
    resp = draw(client, activity_id, {**other.headers, **answered(challenge_id)})
    assert resp.status_code == 404
    nonce, expires, _mac = challenge_id.split(".")
    forged = f"{nonce}.{int(expires) + 3600}.{_mac}"
    resp = draw(client, activity_id, {**member.headers, **answered(forged)})
    assert resp.json()["error"]["code"] == "risk.challenge_invalid"
    assert _draws(activity_id) == 0
    assert challenges.MAX_ATTEMPTS == 5


def test_the_device_id_is_checked_and_hard_rates_refuse(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    prizes = [{"name": "谢谢参与", "kind": "none", "weight": 1}]
    config = lottery_config(prizes, free_draws_per_day=10)
    activity_id = int(create_activity(api, operator, tree.city_a, config=config)["id"])
    set_limits(api, operator, activity_id, account={"challenge": 2, "refuse": 3})
    member = make_member(tree.city_a)
    client = client_from(AWAY)
    bad = draw(client, activity_id, {**member.headers, "X-Device-Id": "short"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "risk.bad_device_id"
    headers = {**member.headers, **device()}
    codes = [draw(client, activity_id, headers).status_code for _ in range(4)]
    assert codes == [200, 200, 403, 429]
    resp = draw(client, activity_id, headers)
    assert resp.json()["error"]["code"] == "risk.too_fast"
    assert resp.headers["Retry-After"] == "60"
    assert _draws(activity_id) == 2

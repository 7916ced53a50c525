"""The H5's taps go through risk control too: a device cookie minted on the first tap, and
a challenge shown as a picture with an answer field that sends the tap again."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from gonghui.accounts.access import issue_access_token
from gonghui.activities.lottery.models import Draw
from gonghui.activities.quiz.models import Attempt
from gonghui.db import unit_of_work
from gonghui.h5.member_action import DEVICE_COOKIE
from gonghui.orgs.models import Role
from gonghui.web.session import ACCESS_COOKIE, csrf_token_for
from tests.activities.conftest import (
    Member,
    MemberFactory,
    add_questions,
    create_activity,
    lottery_config,
    quiz_config,
)
from tests.fixtures import StaffFactory, Tree
from tests.risk.conftest import ANSWER, ClientFrom, set_limits


def _draws(activity_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).where(Draw.activity_id == activity_id)) or 0)


def _cookies(member: Member, device: str | None = None) -> dict[str, str]:
    token = issue_access_token(user_id=member.user_id, session_id=member.session_id)
    cookie = f"{ACCESS_COOKIE}={token}"
    if device:
        cookie += f"; {DEVICE_COOKIE}={device}"
    return {"Cookie": cookie}


def test_an_h5_draw_from_a_flagged_network_shows_a_picture_and_draws_once_answered(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    config = lottery_config([{"name": "谢谢参与", "kind": "none", "weight": 1}])
    activity_id = int(create_activity(api, operator, tree.city_a, config=config)["id"])
    set_limits(api, operator, activity_id, network_accounts=2)
    phone = client_from("127.0.99.3")
    path = f"/h5/activities/{activity_id}/draw"
    members = [make_member(tree.city_a) for _ in range(3)]

    devices = []
    for member in members[:2]:
        form = {"csrf": csrf_token_for(member.session_id), "draw_key": f"k-{member.user_id}"}
        page = phone.post(path, data=form, headers=_cookies(member))
        assert page.status_code == 200, page.text
        assert 'class="challenge"' not in page.text
        devices.append(page.cookies[DEVICE_COOKIE])
    assert len(set(devices)) == 2
    assert _draws(activity_id) == 2

    third = members[2]
    form = {"csrf": csrf_token_for(third.session_id), "draw_key": "k-third"}
    page = phone.post(path, data=form, headers=_cookies(third, "h5-my-own-phone"))
    assert page.status_code == 200
    assert DEVICE_COOKIE not in page.cookies  # it had one
    assert "请输入图中字符" in page.text
    found = re.search(r'name="risk_challenge" value="([^"]+)"', page.text)
    assert found is not None
    challenge_id = found.group(1)
    assert f'action="{path}"' in page.text or f'hx-post="{path}"' in page.text
    picture = phone.get(f"/h5/risk/challenges/{challenge_id}/image", headers=_cookies(third))
    assert picture.status_code == 200
    assert picture.content.startswith(b"\x89PNG")
    assert _draws(activity_id) == 2

    answered = {**form, "risk_challenge": challenge_id, "risk_answer": ANSWER}
    page = phone.post(path, data=answered, headers=_cookies(third, "h5-my-own-phone"))
    assert page.status_code == 200
    assert 'class="challenge"' not in page.text
    assert "很遗憾" in page.text
    assert _draws(activity_id) == 3


def test_an_h5_quiz_start_from_a_flagged_network_asks_for_the_picture_first(
    api: httpx.Client,
    client_from: ClientFrom,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR).headers
    add_questions(api, operator, tree.city_a)
    activity = create_activity(api, operator, tree.city_a, config=quiz_config(), title="知识竞答")
    activity_id = int(activity["id"])
    set_limits(api, operator, activity_id, network_accounts=2)
    phone = client_from("127.0.98.3")
    path = f"/h5/activities/{activity_id}/quiz"
    members = [make_member(tree.city_a) for _ in range(3)]
    for member in members[:2]:
        page = phone.post(
            path, data={"csrf": csrf_token_for(member.session_id)}, headers=_cookies(member)
        )
        assert page.status_code == 200, page.text
        assert 'class="challenge"' not in page.text

    third = members[2]
    form = {"csrf": csrf_token_for(third.session_id)}
    page = phone.post(path, data=form, headers=_cookies(third, "h5-third-phone"))
    assert page.status_code == 200
    assert f'action="{path}"' in page.text
    found = re.search(r'name="risk_challenge" value="([^"]+)"', page.text)
    assert found is not None
    with unit_of_work(read_only=True) as session:
        started = session.scalar(select(func.count()).select_from(Attempt))
    assert started == 2
    phone.get(f"/h5/risk/challenges/{found.group(1)}/image", headers=_cookies(third))
    answered = {**form, "risk_challenge": found.group(1), "risk_answer": ANSWER}
    page = phone.post(path, data=answered, headers=_cookies(third, "h5-third-phone"))
    assert page.status_code == 200
    assert 'class="challenge"' not in page.text
    with unit_of_work(read_only=True) as session:
        started = session.scalar(select(func.count()).select_from(Attempt))
    assert started == 3

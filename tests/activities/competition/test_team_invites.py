"""Teams formed by invite code: a captain registers a team short of its minimum, teammates
join with the code the entry's members see, a forming team is not judged, and however many
join at once no team passes its maximum."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import func, select

from gonghui.activities.competition.models import Entry, EntryMember
from gonghui.db import unit_of_work
from tests.activities.competition.conftest import Competition, register
from tests.activities.conftest import MemberFactory
from tests.fixtures import Tree


def _join(
    api: httpx.Client, competition: Competition, headers: dict[str, str], code: str
) -> httpx.Response:
    return api.post(
        f"/api/v1/activities/{competition.id}/competition/registration/join",
        json={"invite_code": code},
        headers=headers,
    )


def test_a_team_forms_by_invite_code_and_is_judged_only_once_complete(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition(teams=True)  # 2 to 3 members
    captain, mate, third, fourth = (make_member(tree.grassroots_a1x) for _ in range(4))
    outsider = make_member(tree.grassroots_b1)

    alone = register(api, competition, captain.headers, team_name="车工一组", invite=True)
    assert alone.status_code == 201, alone.text
    entry = alone.json()
    assert entry["team_size"] == 1
    code = entry["invite_code"]
    assert code is not None
    assert len(code) == 8

    # A forming team is not handed to a panel.
    base = f"/api/v1/activities/{competition.id}/competition"
    panel = api.post(f"{base}/panels", json={"name": "总评"}, headers=competition.operator)
    assign = api.post(
        f"/api/v1/competition/panels/{panel.json()['id']}/entries",
        json={"entry_ids": [entry["id"]]},
        headers=competition.operator,
    )
    assert assign.status_code == 409
    assert assign.json()["error"]["code"] == "competition.team_forming"

    wrong = _join(api, competition, mate.headers, "ZZZZZZZZ")
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "competition.bad_invite"
    assert _join(api, competition, outsider.headers, code).status_code == 404  # not theirs to see
    assert _join(api, competition, captain.headers, code).status_code == 409

    joined = _join(api, competition, mate.headers, code.lower())
    assert joined.status_code == 200, joined.text
    assert joined.json()["team_size"] == 2
    mine = api.get(f"{base}/registration", headers=mate.headers).json()
    assert mine["id"] == entry["id"]
    assert mine["invite_code"] == code  # room for one more: the code still works
    assert _join(api, competition, mate.headers, code).status_code == 409

    assert _join(api, competition, third.headers, code).json()["team_size"] == 3
    full = _join(api, competition, fourth.headers, code)
    assert full.status_code == 422  # full: the code is spent
    assert api.get(f"{base}/registration", headers=third.headers).json()["invite_code"] is None

    assigned = api.post(
        f"/api/v1/competition/panels/{panel.json()['id']}/entries",
        json={"entry_ids": [entry["id"]]},
        headers=competition.operator,
    )
    assert assigned.status_code == 200, assigned.text


def test_concurrent_joins_never_pass_the_teams_maximum(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition(teams=True)  # at most 3
    captain = make_member(tree.grassroots_a1x)
    joiners = [make_member(tree.grassroots_a1x) for _ in range(12)]
    code = register(api, competition, captain.headers, team_name="攻关组", invite=True).json()[
        "invite_code"
    ]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda m: _join(api, competition, m.headers, code), joiners))
    assert sorted(r.status_code for r in answers).count(200) == 2
    assert all(r.status_code in (200, 409, 422) for r in answers)
    with unit_of_work(read_only=True) as session:
        size = session.scalar(select(Entry.team_size))
        members = session.scalar(select(func.count()).select_from(EntryMember))
    assert (size, members) == (3, 3)

"""A competition's optional public vote: once the judged results are published, the ranked
entries become approved candidates of a praise vote of the competition's union, members
vote as in any praise vote, and the frozen votes show beside the published ranking."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from gonghui import clock
from gonghui.activities.vote.models import Candidate
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.competition.conftest import judged_competition, publish, score
from tests.activities.conftest import MemberFactory, create_activity, h5_get, window
from tests.activities.vote.conftest import vote, vote_config
from tests.baas.conftest import audit_rows
from tests.fixtures import StaffFactory, Tree


def _vote_of(api: httpx.Client, headers: dict[str, str], org_id: int) -> int:
    activity = create_activity(
        api,
        headers,
        org_id,
        config=vote_config(),
        title="技能大赛人气投票",
        **window(length_hours=48),
    )
    vote_id: int = activity["id"]
    return vote_id


def test_ranked_entries_go_to_a_public_vote_whose_frozen_counts_join_the_results(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    competition = judged.competition
    operator = competition.operator
    base = f"/api/v1/activities/{competition.id}/competition"
    public = f"/api/v1/public/competitions/{competition.id}/results"
    vote_id = _vote_of(api, operator, tree.city_a)

    score(api, judged, judge.headers)
    # Judging is blind and the vote shows names: not before the results are public.
    early = api.post(f"{base}/public-vote", json={"vote_id": vote_id}, headers=operator)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "competition.results_not_published"
    publish(api, judged)

    # Only a praise vote of the competition's own union, that its operator runs.
    below = _vote_of(api, operator, tree.district_a1)
    wrong = api.post(f"{base}/public-vote", json={"vote_id": below}, headers=operator)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["code"] == "competition.bad_public_vote"
    outsider = make_staff(tree.city_b, Role.OPERATOR)
    theirs = _vote_of(api, outsider.headers, tree.city_b)
    hidden = api.post(f"{base}/public-vote", json={"vote_id": theirs}, headers=operator)
    assert hidden.status_code == 404

    put = api.post(f"{base}/public-vote", json={"vote_id": vote_id}, headers=operator)
    assert put.status_code == 200, put.text
    assert put.json() == {"vote_id": vote_id, "added": 2}
    again = api.post(f"{base}/public-vote", json={"vote_id": vote_id}, headers=operator)
    assert again.json() == {"vote_id": vote_id, "added": 0}
    second = _vote_of(api, operator, tree.city_a)
    other = api.post(f"{base}/public-vote", json={"vote_id": second}, headers=operator)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "competition.bad_public_vote"
    (row,) = audit_rows("competition.public_vote")
    assert row[2] == str(competition.id)
    assert row[3]["vote_id"] == vote_id

    voters = [make_member(tree.grassroots_a1x) for _ in range(3)]
    listed = api.get(f"/api/v1/activities/{vote_id}/candidates", headers=voters[0].headers)
    assert listed.status_code == 200, listed.text
    by_name = {c["name"]: c["id"] for c in listed.json()}
    assert set(by_name) == {"王师傅", "李工匠"}
    for member in voters:
        assert vote(api, vote_id, member.headers, by_name["王师傅"]).status_code == 201
    assert vote(api, vote_id, voters[0].headers, by_name["李工匠"]).status_code == 201

    while_open = api.get(public).json()
    assert while_open["public_vote_id"] == vote_id
    assert [line["public_votes"] for line in while_open["lines"]] == [None, None]
    page_path = f"/h5/activities/{competition.id}"
    assert f'href="/h5/activities/{vote_id}"' in h5_get(api, voters[1], page_path).text

    clock.advance(timedelta(days=3))  # the vote has ended; the competition has not
    colleague = make_staff(tree.city_a, Role.OPERATOR).headers  # signed in since
    frozen = api.post(f"/api/v1/activities/{vote_id}/vote-results", headers=colleague)
    assert frozen.status_code == 200, frozen.text
    lines = api.get(public).json()["lines"]
    assert [(line["rank"], line["names"], line["public_votes"]) for line in lines] == [
        (1, ["王师傅"], 3),
        (2, ["李工匠"], 1),
    ]
    page = h5_get(api, make_member(tree.grassroots_a1x), page_path).text
    assert "人气 3 票" in page
    assert "人气 1 票" in page
    assert f'href="/h5/activities/{vote_id}"' not in page  # the vote is over


def test_concurrent_puts_choose_one_public_vote_and_add_each_entry_once(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    score(api, judged, judge.headers)
    publish(api, judged)
    operator = judged.competition.operator
    votes = [_vote_of(api, operator, tree.city_a) for _ in range(4)]
    url = f"/api/v1/activities/{judged.competition.id}/competition/public-vote"

    def put(vote_id: int) -> httpx.Response:
        return api.post(url, json={"vote_id": vote_id}, headers=operator)

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(put, votes * 3))

    assert sorted(r.status_code for r in answers) == [200] * 3 + [409] * 9, [
        r.text for r in answers
    ]
    (chosen,) = {r.json()["vote_id"] for r in answers if r.status_code == 200}
    assert sorted(r.json()["added"] for r in answers if r.status_code == 200) == [0, 0, 2]
    with unit_of_work(read_only=True) as session:
        standing = session.execute(select(Candidate.activity_id, Candidate.entry_id)).all()
    entry_ids = {e["id"] for e in judged.entries.values()}
    assert sorted(standing) == sorted((chosen, entry) for entry in entry_ids)

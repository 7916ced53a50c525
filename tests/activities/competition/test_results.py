"""Scores normalised per judge, ranked, frozen when the operator publishes them, and shown
to everyone with names only then."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gonghui.activities.competition.results import normalise, rank
from gonghui.orgs.models import Role
from tests.activities.competition.conftest import Competition, register
from tests.activities.conftest import MemberFactory
from tests.baas.conftest import audit_rows
from tests.fixtures import StaffFactory, Tree

WEIGHTS = {"craft": 3, "novelty": 1}
# Judge 1 tells the entries apart on craft only; judge 2, lenient, on novelty only and
# scores two of the three.
JUDGE_1 = {"E1": (8, 6), "E2": (6, 6), "E3": (4, 6)}
JUDGE_2 = {"E1": (10, 9), "E2": (10, 7)}
# By hand: judge 1's craft has mean 6 and population sd sqrt(8/3), so z = ±sqrt(3/2) and 0;
# novelty does not vary (z = 0). Weighted: 3·z/4 = ±0.918559 and 0. Judge 2's novelty has
# mean 8, sd 1: z = ±1, weighted 1·z/4 = ±0.25; craft does not vary.
# E1 = (0.918559 + 0.25)/2 = 0.584279; E2 = (0 - 0.25)/2 = -0.125; E3 = -0.918559 (one judge).
EXPECTED = [("E1", 1, 584_279, 2), ("E2", 2, -125_000, 2), ("E3", 3, -918_559, 1)]


def test_normalisation_on_a_hand_computed_example() -> None:
    ids = {"E1": 1, "E2": 2, "E3": 3}
    judged = {
        (judge, ids[code]): {"craft": craft, "novelty": novelty}
        for judge, scores in ((1, JUDGE_1), (2, JUDGE_2))
        for code, (craft, novelty) in scores.items()
    }
    scored = normalise(judged, WEIGHTS)
    assert scored[1] == (pytest.approx((0.75 * 1.5**0.5 + 0.25) / 2), 2)
    ranked = rank(scored, {i: code for code, i in ids.items()})
    assert [(r.entry_id, r.rank, r.score_micros, r.judges) for r in ranked] == [
        (ids[code], place, micros, judges) for code, place, micros, judges in EXPECTED
    ]


def test_equal_scores_share_a_rank() -> None:
    ranked = rank({1: (0.5, 1), 2: (0.5, 1), 3: (-1.0, 1)}, {1: "E-A", 2: "E-B", 3: "E-C"})
    assert [(r.entry_id, r.rank) for r in ranked] == [(1, 1), (2, 1), (3, 3)]


def test_ranked_results_are_published_frozen_and_named_only_then(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    competition: Competition = make_competition()
    judges = [make_staff(tree.province, Role.AUDITOR) for _ in range(2)]
    names = {"E1": "张一", "E2": "王二", "E3": "李三"}
    members = {code: make_member(tree.grassroots_a1x, name=n) for code, n in names.items()}
    for member in members.values():
        assert register(api, competition, member.headers).status_code == 201
    base = f"/api/v1/activities/{competition.id}/competition"
    listed = api.get(f"{base}/entries", headers=competition.operator).json()
    by_captain = {e["captain_membership_id"]: e for e in listed}
    entries = {code: by_captain[m.membership_id] for code, m in members.items()}
    panel = api.post(f"{base}/panels", json={"name": "总评"}, headers=competition.operator)
    panel_id = panel.json()["id"]
    for judge in judges:
        api.post(
            f"/api/v1/competition/panels/{panel_id}/judges",
            json={"user_id": judge.user_id},
            headers=competition.operator,
        )
    api.post(
        f"/api/v1/competition/panels/{panel_id}/entries",
        json={"entry_ids": [e["id"] for e in entries.values()]},
        headers=competition.operator,
    )
    for judge, scores in zip(judges, (JUDGE_1, JUDGE_2), strict=True):
        for code, (craft, novelty) in scores.items():
            resp = api.put(
                f"/api/v1/competition/panels/{panel_id}/judging/{entries[code]['code']}/scores",
                json={"scores": {"craft": craft, "novelty": novelty}},
                headers=judge.headers,
            )
            assert resp.status_code == 200, resp.text

    public = f"/api/v1/public/competitions/{competition.id}/results"
    before = api.get(public)
    assert before.status_code == 200
    assert before.json() == {"published": False, "public_vote_id": None, "lines": []}

    early = api.post(f"{base}/results/publish", headers=competition.operator)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "competition.panels_open"

    preview = api.get(f"{base}/ranking", headers=competition.operator).json()
    expected = [
        {"entry_id": entries[code]["id"], "rank": place, "score_micros": micros, "judges": n}
        for code, place, micros, n in EXPECTED
    ]
    assert preview == expected

    assert (
        api.post(
            f"/api/v1/competition/panels/{panel_id}/close", headers=competition.operator
        ).status_code
        == 200
    )
    published = api.post(f"{base}/results/publish", headers=competition.operator)
    assert published.status_code == 200, published.text
    assert published.json() == expected

    lines = api.get(public).json()
    assert lines["published"] is True
    assert [(line["rank"], line["names"], line["org_name"]) for line in lines["lines"]] == [
        (1, ["张一"], "天河软件园工会"),
        (2, ["王二"], "天河软件园工会"),
        (3, ["李三"], "天河软件园工会"),
    ]
    assert [line["score"] for line in lines["lines"]] == [0.584279, -0.125, -0.918559]

    again = api.post(f"{base}/results/publish", headers=competition.operator)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "competition.results_published"
    assert api.get(public).json() == lines
    (row,) = audit_rows("competition.results.publish")
    assert row[2] == str(competition.id)
    assert row[3]["entries"] == 3

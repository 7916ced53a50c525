"""Judges score entries they know only by code, never one of their own union's, within
the rubric's bounds, until the panel closes."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx
from sqlalchemy import func, select

from gonghui.activities.competition.models import Score
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.competition.conftest import judged_competition
from tests.activities.conftest import MemberFactory
from tests.baas.conftest import audit_rows
from tests.fixtures import StaffFactory, Tree


def _scores() -> int:
    with unit_of_work(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Score)) or 0


def test_a_judge_sees_entries_by_code_only(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])

    resp = api.get(f"/api/v1/competition/panels/{judged.panel}/judging", headers=judge.headers)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert sorted(e["code"] for e in view) == sorted(e["code"] for e in judged.entries.values())
    for entry in view:
        assert set(entry) == {"code", "submitted", "files", "my_scores"}
        assert entry["submitted"] is True
        assert entry["my_scores"] is None
        (file,) = entry["files"]
        assert set(file) == {"id", "content_type", "url"}
        assert file["content_type"] == "application/pdf"
    text = resp.text
    for forbidden in ["王师傅", "李工匠", "天河", "广州", "数控车削", "作品"]:
        assert forbidden not in text
    # Nor does a download: the file is saved under its id, not the name it was uploaded as.
    for entry in view:
        (file,) = entry["files"]
        got = httpx.get(file["url"], follow_redirects=True, timeout=10)
        assert got.status_code == 200
        assert got.content.startswith(b"%PDF-1.4 entry ")
        disposition = unquote(got.headers["content-disposition"])
        assert f"submission-{file['id']}.pdf" in disposition
        assert "作品" not in disposition
    # The name is signed with the rest: a link renamed is refused.
    renamed = view[0]["files"][0]["url"].replace("name=submission-", "name=mine-")
    assert httpx.get(renamed, timeout=10).status_code == 403


def test_a_judge_never_scores_an_entry_of_their_own_union(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    # A role at district A1 ties the judge to grassroots A1x below it, not to city A above.
    local = make_staff(tree.district_a1, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [local])
    url = f"/api/v1/competition/panels/{judged.panel}/judging"

    view = api.get(url, headers=local.headers).json()
    assert [e["code"] for e in view] == [judged.entries["李工匠"]["code"]]

    own = judged.entries["王师傅"]["code"]
    resp = api.put(
        f"{url}/{own}/scores", json={"scores": {"craft": 9, "novelty": 9}}, headers=local.headers
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "competition.conflict_of_interest"
    assert _scores() == 0

    other = judged.entries["李工匠"]["code"]
    resp = api.put(
        f"{url}/{other}/scores", json={"scores": {"craft": 7, "novelty": 4}}, headers=local.headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["scores"] == {"craft": 7, "novelty": 4}
    assert _scores() == 1


def test_a_declared_conflict_withdraws_the_judge_and_drops_their_score(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    url = f"/api/v1/competition/panels/{judged.panel}/judging"
    code = judged.entries["李工匠"]["code"]
    body = {"scores": {"craft": 7, "novelty": 4}}
    assert api.put(f"{url}/{code}/scores", json=body, headers=judge.headers).status_code == 200
    assert _scores() == 1

    resp = api.post(f"{url}/{code}/conflict", headers=judge.headers)
    assert resp.status_code == 204
    assert _scores() == 0
    assert code not in [e["code"] for e in api.get(url, headers=judge.headers).json()]
    resp = api.put(f"{url}/{code}/scores", json=body, headers=judge.headers)
    assert resp.status_code == 403
    assert _scores() == 0


def test_scores_stay_within_the_rubric_and_are_editable_until_the_panel_closes(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    url = f"/api/v1/competition/panels/{judged.panel}/judging"
    code = judged.entries["李工匠"]["code"]

    for bad in ({"craft": 11, "novelty": 1}, {"craft": 5}, {"craft": 5, "novelty": 1, "x": 1}):
        resp = api.put(f"{url}/{code}/scores", json={"scores": bad}, headers=judge.headers)
        assert resp.status_code == 422, bad
        assert resp.json()["error"]["code"] == "competition.bad_scores"
    assert _scores() == 0

    for craft in (5, 8):
        resp = api.put(
            f"{url}/{code}/scores",
            json={"scores": {"craft": craft, "novelty": 2}},
            headers=judge.headers,
        )
        assert resp.status_code == 200
    mine = {e["code"]: e["my_scores"] for e in api.get(url, headers=judge.headers).json()}
    assert mine[code] == {"craft": 8, "novelty": 2}

    close = api.post(
        f"/api/v1/competition/panels/{judged.panel}/close", headers=judged.competition.operator
    )
    assert close.status_code == 200
    resp = api.put(
        f"{url}/{code}/scores",
        json={"scores": {"craft": 1, "novelty": 1}},
        headers=judge.headers,
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "competition.panel_closed"
    mine = {e["code"]: e["my_scores"] for e in api.get(url, headers=judge.headers).json()}
    assert mine[code] == {"craft": 8, "novelty": 2}
    for action in ("panel.create", "judge.add", "entries.assign", "panel.close"):
        assert len(audit_rows(f"competition.{action}")) == 1, action


def test_only_the_panels_judges_see_it(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    stranger = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    resp = api.get(f"/api/v1/competition/panels/{judged.panel}/judging", headers=stranger.headers)
    assert resp.status_code == 404
    code = judged.entries["李工匠"]["code"]
    resp = api.put(
        f"/api/v1/competition/panels/{judged.panel}/judging/{code}/scores",
        json={"scores": {"craft": 1, "novelty": 1}},
        headers=stranger.headers,
    )
    assert resp.status_code == 404
    assert _scores() == 0


def test_another_unions_operator_cannot_run_the_panels(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    other = make_staff(tree.city_b, Role.OPERATOR)
    base = f"/api/v1/activities/{judged.competition.id}/competition"
    panel = f"/api/v1/competition/panels/{judged.panel}"
    refused = [
        api.get(f"{base}/entries", headers=other.headers),
        api.post(f"{base}/panels", json={"name": "x"}, headers=other.headers),
        api.post(f"{panel}/judges", json={"user_id": other.user_id}, headers=other.headers),
        api.post(f"{panel}/close", headers=other.headers),
        api.get(f"{base}/ranking", headers=other.headers),
        api.post(f"{base}/results/publish", headers=other.headers),
    ]
    assert [r.status_code for r in refused] == [404] * 6
    assert len(audit_rows("competition.panel.create")) == 1
    assert len(audit_rows("competition.judge.add")) == 1


def test_a_judge_must_be_a_staff_account(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    make_staff: StaffFactory,
) -> None:
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    member = judged.members["王师傅"]
    resp = api.post(
        f"/api/v1/competition/panels/{judged.panel}/judges",
        json={"user_id": member.user_id},
        headers=judged.competition.operator,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "competition.bad_judge"
    assert len(audit_rows("competition.judge.add")) == 1

"""Members register (alone or as a team), their answers land in the operator's form table,
and they submit files until the deadline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import clock
from gonghui.activities.competition.models import Entry, EntryMember
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.competition.conftest import (
    Competition,
    competition_config,
    make_form_app,
    register,
    upload,
)
from tests.activities.conftest import MemberFactory, window
from tests.fixtures import StaffFactory, Tree


def _counts() -> tuple[int, int]:
    with unit_of_work(read_only=True) as session:
        return (
            session.scalar(select(func.count()).select_from(Entry)) or 0,
            session.scalar(select(func.count()).select_from(EntryMember)) or 0,
        )


def _records(api: httpx.Client, competition: Competition) -> list[dict[str, Any]]:
    resp = api.get("/api/v1/baas/data/signup/records", headers=competition.app.server)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


@pytest.mark.parametrize("where", ["missing_table", "other_union"])
def test_the_form_must_be_a_table_of_an_app_of_the_organiser(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, where: str
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    app = make_form_app(api, tree.city_b if where == "other_union" else tree.city_a)
    config = competition_config(app.id)
    if where == "missing_table":
        config["competition"]["form"]["table"] = "nosuch"
    resp = api.post(
        "/api/v1/activities",
        json={"org_id": tree.city_a, "title": "大赛", "config": config, **window()},
        headers=op.headers,
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "competition.bad_form"
    assert error["details"][0]["field"] == "config.competition.form"


def test_a_member_registers_once_and_the_answers_are_a_record_of_the_form(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition()
    member = make_member(tree.grassroots_a1x)

    resp = register(api, competition, member.headers, answers={"pitch": "no title"})
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "answers.title"
    assert _counts() == (0, 0)
    assert _records(api, competition) == []

    resp = register(api, competition, member.headers, answers={"title": "数控车削", "pitch": "快"})
    assert resp.status_code == 201, resp.text
    entry = resp.json()
    assert "code" not in entry
    (record,) = _records(api, competition)
    assert record["id"] == entry["record_id"]
    assert (record["title"], record["pitch"], record["created_by"]) == (
        "数控车削",
        "快",
        member.user_id,
    )

    again = register(api, competition, member.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "competition.already_registered"
    assert _counts() == (1, 1)
    assert len(_records(api, competition)) == 1

    mine = api.get(
        f"/api/v1/activities/{competition.id}/competition/registration", headers=member.headers
    )
    assert mine.json()["id"] == entry["id"]


def test_registration_outside_its_window_is_refused(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition()
    member = make_member(tree.grassroots_a1x)
    clock.advance(timedelta(days=2, seconds=1))
    resp = register(api, competition, member.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "competition.registration_closed"
    assert _counts() == (0, 0)
    assert _records(api, competition) == []


def test_a_member_of_another_union_cannot_register(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition()
    outsider = make_member(tree.grassroots_b1)
    resp = register(api, competition, outsider.headers)
    assert resp.status_code == 404
    assert _counts() == (0, 0)


def test_a_captain_registers_a_team_and_each_member_is_in_one_entry(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition(teams=True)
    captain, mate, third, fourth = (make_member(tree.grassroots_a1x) for _ in range(4))
    outsider = make_member(tree.grassroots_b1)

    alone = register(api, competition, captain.headers, team_name="车工一组")
    assert alone.status_code == 422
    assert alone.json()["error"]["code"] == "competition.bad_team"
    too_big = register(
        api,
        competition,
        captain.headers,
        team_name="车工一组",
        member_ids=[mate.membership_id, third.membership_id, fourth.membership_id],
    )
    assert too_big.status_code == 422
    foreign = register(
        api, competition, captain.headers, team_name="车工一组", member_ids=[outsider.membership_id]
    )
    assert foreign.status_code == 422
    assert foreign.json()["error"]["code"] == "competition.bad_team"
    assert _counts() == (0, 0)

    resp = register(
        api, competition, captain.headers, team_name="车工一组", member_ids=[mate.membership_id]
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["team_name"] == "车工一组"

    # The teammate is in the captain's entry: registering again, alone or in a team, fails.
    mate_again = register(
        api, competition, mate.headers, team_name="另一组", member_ids=[third.membership_id]
    )
    assert mate_again.status_code == 409
    assert mate_again.json()["error"]["code"] == "competition.already_registered"
    poach = register(
        api, competition, third.headers, team_name="三组", member_ids=[mate.membership_id]
    )
    assert poach.status_code == 409
    assert _counts() == (1, 2)
    mine = api.get(
        f"/api/v1/activities/{competition.id}/competition/registration", headers=mate.headers
    )
    assert mine.json()["id"] == resp.json()["id"]


def test_files_are_submitted_and_replaced_until_the_deadline_then_refused(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition()
    member = make_member(tree.grassroots_a1x)
    other = make_member(tree.grassroots_a1x)
    assert register(api, competition, member.headers).status_code == 201
    url = f"/api/v1/activities/{competition.id}/competition/registration/files"

    first = upload(api, competition.app, member.headers, "draft.pdf")
    resp = api.put(url, json={"file_ids": [first]}, headers=member.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["file_ids"] == [first]
    assert resp.json()["submitted_at"] is not None

    second = upload(api, competition.app, member.headers, "final.pdf")
    resp = api.put(url, json={"file_ids": [second]}, headers=member.headers)
    assert resp.json()["file_ids"] == [second]

    # A paused competition takes no files until it resumes.
    paused = api.post(f"/api/v1/activities/{competition.id}/pause", headers=competition.operator)
    assert paused.status_code == 200, paused.text
    resp = api.put(url, json={"file_ids": [first]}, headers=member.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "activities.not_live"
    api.post(f"/api/v1/activities/{competition.id}/resume", headers=competition.operator)
    assert api.put(url, json={"file_ids": [second]}, headers=member.headers).status_code == 200

    theirs = upload(api, competition.app, other.headers, "theirs.pdf")
    resp = api.put(url, json={"file_ids": [second, theirs]}, headers=member.headers)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "competition.bad_files"

    clock.advance(timedelta(days=5, seconds=1))
    late = upload(api, competition.app, member.headers, "late.pdf")
    resp = api.put(url, json={"file_ids": [late]}, headers=member.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "competition.deadline_passed"
    with unit_of_work(read_only=True) as session:
        (entry,) = session.scalars(select(Entry))
        assert entry.file_ids == [second]


def test_repeating_a_competition_moves_its_registration_and_deadline_with_it(
    api: httpx.Client, make_competition: Any
) -> None:
    competition: Competition = make_competition()
    source = api.get(f"/api/v1/activities/{competition.id}", headers=competition.operator).json()
    resp = api.post(f"/api/v1/activities/{competition.id}/repeat", headers=competition.operator)
    assert resp.status_code == 201, resp.text
    copy = resp.json()
    shift = datetime.fromisoformat(copy["starts_at"]) - datetime.fromisoformat(source["starts_at"])
    assert shift >= timedelta(days=28)
    for name in ("registration_opens_at", "registration_closes_at", "submission_deadline"):
        moved = datetime.fromisoformat(copy["config"]["competition"][name])
        assert moved - datetime.fromisoformat(source["config"]["competition"][name]) == shift
    assert copy["config"]["competition"]["form"] == source["config"]["competition"]["form"]


def test_a_teammate_submits_the_teams_uploads(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition(teams=True)
    captain, mate, outsider = (make_member(tree.grassroots_a1x) for _ in range(3))
    resp = register(
        api, competition, captain.headers, team_name="钳工组", member_ids=[mate.membership_id]
    )
    assert resp.status_code == 201, resp.text
    drawing = upload(api, competition.app, captain.headers, "图纸.pdf")
    url = f"/api/v1/activities/{competition.id}/competition/registration/files"

    resp = api.put(url, json={"file_ids": [drawing]}, headers=mate.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["file_ids"] == [drawing]
    # Not registered: no entry to submit to, and the team's entry is unchanged.
    resp = api.put(url, json={"file_ids": []}, headers=outsider.headers)
    assert resp.status_code == 404
    with unit_of_work(read_only=True) as session:
        (entry,) = session.scalars(select(Entry))
        assert entry.file_ids == [drawing]


def test_the_hub_shows_the_team_as_joined(
    api: httpx.Client, tree: Tree, make_competition: Any, make_member: MemberFactory
) -> None:
    competition: Competition = make_competition(teams=True)
    captain, mate, bystander = (make_member(tree.grassroots_a1x) for _ in range(3))
    url = f"/api/v1/hub/activities/{competition.id}"
    assert api.get(url, headers=mate.headers).json()["me"]["joined"] is False
    resp = register(
        api, competition, captain.headers, team_name="焊工组", member_ids=[mate.membership_id]
    )
    assert resp.status_code == 201
    joined = [api.get(url, headers=m.headers).json()["me"]["joined"] for m in (captain, mate)]
    assert joined == [True, True]
    assert api.get(url, headers=bystander.headers).json()["me"]["joined"] is False

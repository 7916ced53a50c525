"""A competition of the city-A union, its registration form a table of the union's app,
built over HTTP as a developer and an operator would build it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gonghui import clock
from gonghui.orgs.models import Role
from tests.activities.conftest import Member, MemberFactory, create_activity
from tests.activities.vote.conftest import approved_candidates, people_of, vote_activity
from tests.activities.vote.conftest import vote as cast_vote
from tests.baas.conftest import signed_in_user
from tests.fixtures import Staff, StaffFactory, Tree


@dataclass(frozen=True)
class FormApp:
    id: int
    client_key: str
    server_key: str

    def as_user(self, headers: dict[str, str]) -> dict[str, str]:
        return {"X-Gonghui-App-Key": self.client_key, **headers}

    @property
    def server(self) -> dict[str, str]:
        return {"X-Gonghui-App-Key": self.server_key}


def make_form_app(api: httpx.Client, org_id: int, table: str = "signup") -> FormApp:
    dev = signed_in_user(org_id, Role.DEVELOPER)
    resp = api.post(
        "/api/v1/baas/apps",
        json={"org_id": org_id, "name": "contest", "settings": {}},
        headers=dev.headers,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    resp = api.post(
        f"/api/v1/baas/apps/{body['id']}/tables",
        json={
            "name": table,
            "fields": [
                {"name": "title", "type": "string", "required": True},
                {"name": "pitch", "type": "text"},
            ],
            "permissions": {},
        },
        headers=dev.headers,
    )
    assert resp.status_code == 201, resp.text
    return FormApp(body["id"], body["client_key"], body["server_key"])


@pytest.fixture
def form_app(api: httpx.Client, tree: Tree) -> FormApp:
    return make_form_app(api, tree.city_a)


def competition_config(app_id: int, *, teams: bool = False, **rules: Any) -> dict[str, Any]:
    start = clock.now()
    return {
        "kind": "competition",
        "competition": {
            "teams": teams,
            "min_team_size": 2 if teams else 1,
            "max_team_size": 3 if teams else 1,
            "form": {"app_id": app_id, "table": "signup"},
            "registration_opens_at": start.isoformat(),
            "registration_closes_at": (start + timedelta(days=2)).isoformat(),
            "submission_deadline": (start + timedelta(days=5)).isoformat(),
            "rubric": [
                {"key": "craft", "name": "工艺", "weight": 3, "max_score": 10},
                {"key": "novelty", "name": "创新", "weight": 1, "max_score": 10},
            ],
            **rules,
        },
    }


@dataclass(frozen=True)
class Competition:
    id: int
    app: FormApp
    operator: dict[str, str]


def new_competition(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, app: FormApp, *, teams: bool = False
) -> Competition:
    """City A's competition, its form a table of ``app``, run by a new operator."""
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api,
        op.headers,
        tree.city_a,
        title="职工技能大赛",
        config=competition_config(app.id, teams=teams),
        ends_at=(clock.now() + timedelta(days=30)).isoformat(),
    )
    return Competition(activity["id"], app, op.headers)


@pytest.fixture
def make_competition(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, form_app: FormApp
) -> Any:
    def make(*, teams: bool = False) -> Competition:
        return new_competition(api, tree, make_staff, form_app, teams=teams)

    return make


def register(
    api: httpx.Client, competition: Competition, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return api.post(
        f"/api/v1/activities/{competition.id}/competition/registration",
        json={"answers": {"title": "数控车削"}, **body},
        headers=headers,
    )


def upload(api: httpx.Client, app: FormApp, headers: dict[str, str], name: str) -> int:
    resp = api.post(
        "/api/v1/baas/files",
        files={"file": (name, b"%PDF-1.4 entry " + name.encode(), "application/pdf")},
        headers=app.as_user(headers),
    )
    assert resp.status_code == 201, resp.text
    file_id: int = resp.json()["id"]
    return file_id


@dataclass(frozen=True)
class Judged:
    competition: Competition
    panel: int
    entries: dict[str, dict[str, Any]]  # member name → the operator's view of their entry
    members: dict[str, Member]


def judged_competition(
    api: httpx.Client,
    tree: Tree,
    make_competition: Any,
    make_member: MemberFactory,
    judges: list[Staff],
) -> Judged:
    """Two entries, one from grassroots A1x (under district A1) and one from city A
    itself, both handed to one panel with ``judges``."""
    competition: Competition = make_competition()
    members = {
        "王师傅": make_member(tree.grassroots_a1x, name="王师傅"),
        "李工匠": make_member(tree.city_a, name="李工匠"),
    }
    for name, member in members.items():
        assert register(api, competition, member.headers).status_code == 201
        file_id = upload(api, competition.app, member.headers, f"{name}的作品.pdf")
        resp = api.put(
            f"/api/v1/activities/{competition.id}/competition/registration/files",
            json={"file_ids": [file_id]},
            headers=member.headers,
        )
        assert resp.status_code == 200, resp.text
    base = f"/api/v1/activities/{competition.id}/competition"
    listed = api.get(f"{base}/entries", headers=competition.operator).json()
    by_captain = {e["captain_membership_id"]: e for e in listed}
    entries = {name: by_captain[m.membership_id] for name, m in members.items()}
    resp = api.post(f"{base}/panels", json={"name": "第一评审组"}, headers=competition.operator)
    assert resp.status_code == 201, resp.text
    panel = resp.json()["id"]
    for judge in judges:
        resp = api.post(
            f"/api/v1/competition/panels/{panel}/judges",
            json={"user_id": judge.user_id},
            headers=competition.operator,
        )
        assert resp.status_code == 204, resp.text
    resp = api.post(
        f"/api/v1/competition/panels/{panel}/entries",
        json={"entry_ids": [e["id"] for e in entries.values()]},
        headers=competition.operator,
    )
    assert resp.status_code == 200, resp.text
    return Judged(competition, panel, entries, members)


def score(api: httpx.Client, judged: Judged, judge: dict[str, str]) -> None:
    """王师傅 ranks first, 李工匠 second."""
    for name, craft in (("王师傅", 9), ("李工匠", 5)):
        resp = api.put(
            f"/api/v1/competition/panels/{judged.panel}/judging/"
            f"{judged.entries[name]['code']}/scores",
            json={"scores": {"craft": craft, "novelty": craft}},
            headers=judge,
        )
        assert resp.status_code == 200, resp.text


def publish(api: httpx.Client, judged: Judged) -> None:
    operator = judged.competition.operator
    resp = api.post(f"/api/v1/competition/panels/{judged.panel}/close", headers=operator)
    assert resp.status_code == 200, resp.text
    resp = api.post(
        f"/api/v1/activities/{judged.competition.id}/competition/results/publish",
        headers=operator,
    )
    assert resp.status_code == 200, resp.text


@dataclass(frozen=True)
class ResultsStory:
    """City A's published competition and frozen praise vote, both windows over."""

    competition: int
    vote: int  # 张劳模 3 votes, 赵工匠 and 钱技师 1 each; frozen
    open_vote: int  # another praise vote of city A, not frozen
    log_hash: str  # the frozen vote's
    reader: Member  # a member of grassroots A1x, below city A


def results_story(
    api: httpx.Client,
    tree: Tree,
    make_competition: Callable[[], Competition],
    make_member: MemberFactory,
    make_staff: StaffFactory,
    *,
    before_publication: Callable[[ResultsStory], None] = lambda _story: None,
) -> ResultsStory:
    """The competition judged (王师傅 first, 李工匠 second) and the vote cast; then, after
    ``before_publication`` is called, the ranking published, 8 days passed and the vote
    frozen."""
    judge = make_staff(tree.province, Role.AUDITOR)
    judged = judged_competition(api, tree, make_competition, make_member, [judge])
    people = people_of(tree, make_staff)
    praise = vote_activity(api, tree, people.organiser)["id"]
    still_open = vote_activity(api, tree, people.organiser)["id"]
    a, b, c = approved_candidates(api, praise, tree, people, ["张劳模", "赵工匠", "钱技师"])
    voters = [make_member(tree.grassroots_a1x) for _ in range(3)]
    for member in voters:
        assert cast_vote(api, praise, member.headers, a).status_code == 201
    for candidate in (b, c):
        assert cast_vote(api, praise, voters[0].headers, candidate).status_code == 201
    score(api, judged, judge.headers)
    story = ResultsStory(judged.competition.id, praise, still_open, "", voters[1])
    before_publication(story)
    publish(api, judged)
    clock.advance(timedelta(days=8))
    colleague = make_staff(tree.city_a, Role.OPERATOR).headers  # signed in since
    frozen = api.post(f"/api/v1/activities/{praise}/vote-results", headers=colleague)
    assert frozen.status_code == 200, frozen.text
    return replace(story, log_hash=frozen.json()["log_hash"])

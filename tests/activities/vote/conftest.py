"""Praise votes built over HTTP as an organiser and the unions below it build them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gonghui.activities.vote import results
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity
from tests.baas.conftest import signed_in_user
from tests.fixtures import Staff, StaffFactory, Tree


@pytest.fixture(autouse=True)
def _fresh_rankings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Read the ranking afresh on every request: these tests check counts, not the cache.
    monkeypatch.setattr(results, "RANKING_TTL_S", 0.0)
    yield
    results.forget_rankings()


@dataclass(frozen=True)
class People:
    organiser: Staff  # operator of city A, which runs the vote
    district: Staff  # operator of district A1, below it: nominates
    other_city: Staff  # operator of city B: outside the vote's subtree


def people_of(tree: Tree, make_staff: StaffFactory) -> People:
    """The staff of a vote's story (for tests outside this folder, where the fixture is not)."""
    return People(
        organiser=make_staff(tree.city_a, Role.OPERATOR),
        district=make_staff(tree.district_a1, Role.OPERATOR),
        other_city=make_staff(tree.city_b, Role.OPERATOR),
    )


@pytest.fixture
def people(tree: Tree, make_staff: StaffFactory) -> People:
    return people_of(tree, make_staff)


def vote_config(**rules: Any) -> dict[str, Any]:
    return {"kind": "vote", "vote": {"votes_per_day": 3, "votes_per_candidate_per_day": 1, **rules}}


def vote_activity(api: httpx.Client, tree: Tree, organiser: Staff, **rules: Any) -> dict[str, Any]:
    return create_activity(
        api, organiser.headers, tree.city_a, config=vote_config(**rules), title="2026年度劳模评选"
    )


def nominate(
    api: httpx.Client,
    activity_id: int,
    staff: Staff,
    org_id: int,
    name: str,
    **fields: Any,
) -> httpx.Response:
    return api.post(
        f"/api/v1/activities/{activity_id}/nominations",
        json={"org_id": org_id, "name": name, "profile": f"{name}的先进事迹", **fields},
        headers=staff.headers,
    )


def approved_candidates(
    api: httpx.Client, activity_id: int, tree: Tree, people: People, names: list[str]
) -> list[int]:
    """Candidates nominated by district A1 and approved by the organiser; their ids."""
    ids = []
    for name in names:
        resp = nominate(api, activity_id, people.district, tree.district_a1, name)
        assert resp.status_code == 201, resp.text
        cid = resp.json()["id"]
        resp = api.post(
            f"/api/v1/activities/{activity_id}/nominations/{cid}/review",
            json={"decision": "approve"},
            headers=people.organiser.headers,
        )
        assert resp.status_code == 200, resp.text
        ids.append(cid)
    return ids


def vote(
    api: httpx.Client,
    activity_id: int,
    headers: dict[str, str],
    candidate_id: int,
    key: str | None = None,
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key else {}
    return api.post(
        f"/api/v1/activities/{activity_id}/votes",
        json={"candidate_id": candidate_id},
        headers={**headers, **extra},
    )


# An ISO base media file's first box: what MP4 video starts with.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)


def media_app_key(api: httpx.Client, org_id: int) -> str:
    """The client key of a new app of the org (made by one of its developers)."""
    dev = signed_in_user(org_id, Role.DEVELOPER)
    resp = api.post(
        "/api/v1/baas/apps", json={"org_id": org_id, "name": "评选素材"}, headers=dev.headers
    )
    assert resp.status_code == 201, resp.text
    key: str = resp.json()["client_key"]
    return key


def upload_file(
    api: httpx.Client, key: str, headers: dict[str, str], name: str, data: bytes
) -> int:
    resp = api.post(
        "/api/v1/baas/files",
        files={"file": (name, data, "application/octet-stream")},
        headers={"X-Gonghui-App-Key": key, **headers},
    )
    assert resp.status_code == 201, resp.text
    file_id: int = resp.json()["id"]
    return file_id

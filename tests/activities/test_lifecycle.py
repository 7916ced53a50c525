"""Operators run an activity through its lifecycle; the server clock drives the window."""

from __future__ import annotations

from datetime import timedelta

import httpx

from gonghui import clock
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    lottery_config,
    staff_headers,
    window,
)
from tests.fixtures import StaffFactory, Tree


def test_scheduled_activity_goes_live_at_start_and_ends_at_end(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.grassroots_a1x)
    activity = create_activity(api, op.headers, tree.city_a, starts_in_hours=2)
    assert activity["status"] == "scheduled"
    assert len(activity["seed_commitment"]) == 64
    url = f"/api/v1/activities/{activity['id']}/draws"

    early = api.post(url, headers=member.headers)
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "activities.not_live"

    clock.advance(timedelta(hours=3))
    op_headers = staff_headers(op)
    assert (
        api.get(f"/api/v1/activities/{activity['id']}", headers=op_headers).json()["status"]
        == "live"
    )
    assert api.post(url, headers=member.headers).status_code == 200

    clock.advance(timedelta(days=8))
    late = api.post(url, headers=member.headers)
    assert late.status_code == 409
    assert late.json()["error"]["details"] == {"status": "ended"}


def test_pause_resume_end_archive(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a)
    activity = create_activity(
        api, op.headers, tree.city_a, config=lottery_config(free_draws_per_day=5)
    )
    base = f"/api/v1/activities/{activity['id']}"

    assert api.post(f"{base}/pause", headers=op.headers).json()["status"] == "paused"
    paused = api.post(f"{base}/draws", headers=member.headers)
    assert paused.status_code == 409
    assert paused.json()["error"]["details"] == {"status": "paused"}
    assert api.post(f"{base}/resume", headers=op.headers).json()["status"] == "live"
    assert api.post(f"{base}/draws", headers=member.headers).status_code == 200
    ended = api.post(f"{base}/end", headers=op.headers).json()
    assert ended["status"] == "ended"
    assert api.post(f"{base}/draws", headers=member.headers).status_code == 409
    assert api.post(f"{base}/resume", headers=op.headers).status_code == 409
    assert api.post(f"{base}/archive", headers=op.headers).json()["status"] == "archived"

    with unit_of_work() as session:
        actions = [
            a
            for (a,) in session.query(AuditEntry.action)
            .filter(AuditEntry.subject_type == "activity")
            .order_by(AuditEntry.id)
        ]
    assert actions == [
        "activities.create",
        "activities.publish",
        "activities.pause",
        "activities.resume",
        "activities.end",
        "activities.archive",
    ]


def test_bad_configuration_is_refused_with_the_wrong_field(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    bad = lottery_config(
        [{"name": "券", "kind": "voucher", "weight": -1, "stock": 1, "value": 100}]
    )
    resp = api.post(
        "/api/v1/activities",
        json={"org_id": tree.city_a, "title": "x", "config": bad, **window()},
        headers=op.headers,
    )
    assert resp.status_code == 422
    fields = [d["field"] for d in resp.json()["error"]["details"]]
    assert fields == ["config.lottery.lottery.prizes.0.weight"]

    unknown = api.post(
        "/api/v1/activities",
        json={"org_id": tree.city_a, "title": "x", "config": {"kind": "raffle"}, **window()},
        headers=op.headers,
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "config"
    assert api.get("/api/v1/activities", headers=op.headers).json() == []


def test_window_must_end_after_start(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    w = window()
    resp = api.post(
        "/api/v1/activities",
        json={
            "org_id": tree.city_a,
            "title": "x",
            "config": lottery_config(),
            "starts_at": w["ends_at"],
            "ends_at": w["starts_at"],
        },
        headers=op.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["details"][0]["field"] == "ends_at"


def test_only_safe_fields_change_once_published(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(api, op.headers, tree.city_a)
    base = f"/api/v1/activities/{activity['id']}"
    resp = api.patch(base, json={"title": "新标题"}, headers=op.headers)
    assert resp.status_code == 200
    assert resp.json()["title"] == "新标题"
    # A null end changes nothing (the API fuzzer found it answered 500).
    unchanged = api.patch(base, json={"ends_at": None}, headers=op.headers)
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["ends_at"] == activity["ends_at"]

    locked = api.patch(
        base, json={"limit_total": 99, "config": lottery_config()}, headers=op.headers
    )
    assert locked.status_code == 409
    assert locked.json()["error"]["code"] == "activities.field_locked"
    assert [d["field"] for d in locked.json()["error"]["details"]] == ["config", "limit_total"]
    after = api.get(base, headers=op.headers).json()
    assert after["limit_total"] is None
    assert after["config"] == activity["config"]


def test_draft_edits_anything_and_clone_makes_a_new_draft(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    draft = create_activity(api, op.headers, tree.city_a, publish=False)
    base = f"/api/v1/activities/{draft['id']}"
    resp = api.patch(base, json={"limit_total": 3, "limit_per_day": 1}, headers=op.headers)
    assert resp.json()["limit_total"] == 3
    api.post(f"{base}/publish", headers=op.headers)
    w = window(24 * 30)
    copy = api.post(f"{base}/clone", json={"title": "十二月抽奖", **w}, headers=op.headers)
    assert copy.status_code == 201
    body = copy.json()
    assert body["status"] == "draft"
    assert body["cloned_from_id"] == draft["id"]
    assert body["title"] == "十二月抽奖"
    assert body["limit_total"] == 3
    assert body["config"] == draft["config"]
    assert body["seed_commitment"] is None


def test_operator_of_city_b_sees_nothing_of_city_a(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op_a = make_staff(tree.city_a, Role.OPERATOR)
    op_b = make_staff(tree.city_b, Role.OPERATOR)
    activity = create_activity(api, op_a.headers, tree.district_a1, publish=False)
    base = f"/api/v1/activities/{activity['id']}"
    for method, path in [
        ("GET", base),
        ("PATCH", base),
        ("POST", f"{base}/publish"),
        ("POST", f"{base}/clone"),
        ("GET", f"{base}/ledger.csv"),
    ]:
        resp = api.request(
            method, path, headers=op_b.headers, json={} if method == "PATCH" else None
        )
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["error"]["code"] == "activity.not_found"
    assert api.get("/api/v1/activities", headers=op_b.headers).json() == []
    denied = api.post(
        "/api/v1/activities",
        json={"org_id": tree.city_a, "title": "x", "config": lottery_config(), **window()},
        headers=op_b.headers,
    )
    assert denied.status_code == 404
    assert api.get(base, headers=op_a.headers).json()["status"] == "draft"
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    assert api.get(base, headers=auditor.headers).status_code == 404

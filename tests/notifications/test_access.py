"""Who reads what: members their own notifications only; staff their subtree's; a member's
sign-in never reaches staff routes."""

from __future__ import annotations

import httpx

from gonghui import tasks
from gonghui.db import unit_of_work
from gonghui.notifications import service
from gonghui.notifications.models import Event
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.notifications.conftest import MemberFactory


def test_a_member_sees_only_their_own_notifications(
    tree: Tree, api: httpx.Client, make_member: MemberFactory
) -> None:
    alice = make_member(tree.grassroots_a1x)
    bob = make_member(tree.grassroots_a1x)
    mine = api.get("/api/v1/notifications/inbox", headers=alice.headers).json()["items"]
    theirs = api.get("/api/v1/notifications/inbox", headers=bob.headers).json()["items"]
    assert len(mine) == len(theirs) == 1
    bobs = theirs[0]["id"]
    assert api.get(f"/api/v1/notifications/inbox/{bobs}", headers=alice.headers).status_code == 404
    marked = api.post(f"/api/v1/notifications/inbox/{bobs}/read", headers=alice.headers)
    assert marked.status_code == 404
    assert api.get("/api/v1/notifications/inbox", headers=bob.headers).json()["unread"] == 1


def test_a_member_sign_in_cannot_reach_staff_routes(
    tree: Tree, api: httpx.Client, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x)
    for method, url, body in [
        ("GET", "/api/v1/notifications/deliveries", None),
        ("GET", f"/api/v1/notifications/orgs/{tree.grassroots_a1x}/templates", None),
        ("PUT", f"/api/v1/notifications/orgs/{tree.grassroots_a1x}/rules", {"daily_cap": 0}),
        ("GET", "/api/v1/notifications/broadcasts", None),
        (
            "POST",
            "/api/v1/notifications/broadcasts",
            {"org_id": tree.grassroots_a1x, "title": "t", "body": "b"},
        ),
    ]:
        resp = api.request(method, url, json=body, headers=member.headers)
        assert resp.status_code == 403, (url, resp.text)
        assert resp.json()["error"]["code"] == "accounts.not_staff"
    assert api.get("/api/v1/notifications/inbox").status_code == 401


def test_staff_of_another_org_are_refused(
    tree: Tree, api: httpx.Client, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member(tree.grassroots_a1x)
    with unit_of_work() as session:
        service.notify(
            session,
            service.Notice(
                tree.grassroots_a1x,
                member.user_id,
                Event.PRIZE_WON,
                {"activity": "抽奖", "prize": "雨伞"},
            ),
        )
    tasks.run_due()
    city_a = make_staff(tree.city_a, Role.OPERATOR)
    city_b = make_staff(tree.city_b, Role.ADMIN)

    own = api.get("/api/v1/notifications/deliveries", headers=city_a.headers).json()
    assert {r["user_id"] for r in own} == {member.user_id}
    assert len(own) == 8  # two notifications, four channels each
    assert api.get("/api/v1/notifications/deliveries", headers=city_b.headers).json() == []
    refused = api.get(
        "/api/v1/notifications/deliveries",
        params={"org_id": tree.city_a},
        headers=city_b.headers,
    )
    assert refused.status_code == 404
    for method, url, body in [
        ("GET", f"/api/v1/notifications/orgs/{tree.city_a}/templates", None),
        ("PUT", f"/api/v1/notifications/orgs/{tree.city_a}/rules", {"daily_cap": 0}),
        (
            "PUT",
            f"/api/v1/notifications/orgs/{tree.city_a}/templates/prize_won/sms",
            {"title": "x", "body": "y"},
        ),
        (
            "POST",
            "/api/v1/notifications/broadcasts",
            {"org_id": tree.city_a, "title": "t", "body": "b"},
        ),
    ]:
        resp = api.request(method, url, json=body, headers=city_b.headers)
        assert resp.status_code == 404, (url, resp.text)
    # Nothing changed for city A.
    rules = api.get(f"/api/v1/notifications/orgs/{tree.city_a}/rules", headers=city_a.headers)
    assert rules.json()["daily_cap"] == 5
    assert api.get("/api/v1/notifications/broadcasts", headers=city_a.headers).json() == []


def test_a_template_may_use_only_its_event_variables(
    tree: Tree, api: httpx.Client, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    url = f"/api/v1/notifications/orgs/{tree.city_a}/templates/prize_won/sms"
    bad = api.put(
        url, json={"title": "中奖", "body": "{{ config }} $secret"}, headers=admin.headers
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "notifications.bad_template"
    good = api.put(url, json={"title": "中奖", "body": "您获得了$prize"}, headers=admin.headers)
    assert good.status_code == 200, good.text
    listed = api.get(
        f"/api/v1/notifications/orgs/{tree.grassroots_a1x}/templates", headers=admin.headers
    )
    (sms,) = [t for t in listed.json() if (t["event"], t["channel"]) == ("prize_won", "sms")]
    assert (sms["body"], sms["org_id"]) == ("您获得了$prize", tree.city_a)

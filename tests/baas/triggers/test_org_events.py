"""The union's events reach the triggers of apps whose org covers where they happened:
a verification, a member taking part, a prize won. A refused draw fires nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from gonghui import hooks, tasks
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity, create_member, lottery_config
from tests.baas.conftest import AppHandle
from tests.baas.devapp import make_app
from tests.fixtures import StaffFactory, Tree
from tests.receiver import Receiver, running_receiver

# The receivers listen on loopback, which the operator allows here.
pytestmark = pytest.mark.usefixtures("loopback_allowed")

EVENTS = ("members.verification_approved", "activity.participated", "activity.prize_won")


def watch(api: httpx.Client, app: AppHandle, receiver: Receiver) -> None:
    for event in EVENTS:
        resp = api.post(
            f"/api/v1/baas/apps/{app.id}/triggers",
            json={
                "name": event.replace(".", "-"),
                "event": event,
                "target_kind": "webhook",
                "webhook_url": receiver.url,
            },
            headers=app.dev.headers,
        )
        assert resp.status_code == 201, resp.text


def test_activity_and_verification_events_reach_the_apps_above_them(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    fired: list[tuple[int, str, dict[str, Any]]] = []

    def record(
        session: Any,
        org_id: int,
        event: hooks.OrgEvent,
        payloads: Sequence[dict[str, Any]],
        request_ids: Sequence[str | None],
    ) -> None:
        fired.extend((org_id, str(event), payload) for payload in payloads)

    hooks.subscribe(record)
    try:
        with running_receiver() as city_a, running_receiver() as city_b:
            watch(
                api,
                make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "A"),
                city_a,
            )
            watch(
                api,
                make_app(api, make_staff(tree.city_b, Role.DEVELOPER), tree.city_b, "B"),
                city_b,
            )
            member = create_member(tree.grassroots_a1x)
            operator = make_staff(tree.city_a, Role.OPERATOR)
            only_prize = [
                {"name": "十元券", "kind": "voucher", "weight": 1, "stock": 1, "value": 1000}
            ]
            activity = create_activity(
                api,
                operator.headers,
                tree.district_a1,
                config=lottery_config(only_prize, free_draws_per_day=1),
            )
            url = f"/api/v1/activities/{activity['id']}/draws"
            assert api.post(url, json={"entropy": "a"}, headers=member.headers).json()["won"]
            refused = api.post(url, json={"entropy": "b"}, headers=member.headers)
            assert refused.status_code == 409
            tasks.run_due()
            got = sorted(r.json["event"] for r in city_a.accepted())
            assert got == sorted(EVENTS)
            assert city_b.requests == []
            won = next(r.json for r in city_a.accepted() if r.json["event"] == "activity.prize_won")
            assert won["data"]["activity_id"] == activity["id"]
            assert won["data"]["prize"]["name"] == "十元券"
            assert won["data"]["membership_id"] == member.membership_id
    finally:
        hooks.unsubscribe(record)
    assert [(org, event) for org, event, _ in fired] == [
        (tree.grassroots_a1x, "members.verification_approved"),
        (tree.district_a1, "activity.published"),
        (tree.district_a1, "activity.participated"),
        (tree.district_a1, "activity.prize_won"),
    ]


def test_a_trigger_created_or_disabled_after_its_org_was_read_counts_at_once(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    """Each process holds which org events have triggers (an event goes out per coupon
    sent); a trigger created or disabled counts from its commit on."""

    def emit(mark: str) -> None:
        with unit_of_work() as session:
            hooks.emit(
                session,
                org_id=tree.grassroots_a1x,
                event=hooks.OrgEvent.PARTICIPATED,
                payload={"mark": mark},
            )

    with running_receiver() as receiver:
        app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "A")
        emit("before")  # read, and held: no trigger
        created = api.post(
            f"/api/v1/baas/apps/{app.id}/triggers",
            json={
                "name": "took-part",
                "event": "activity.participated",
                "target_kind": "webhook",
                "webhook_url": receiver.url,
            },
            headers=app.dev.headers,
        )
        assert created.status_code == 201, created.text
        emit("created")
        disabled = api.post(
            f"/api/v1/baas/apps/{app.id}/triggers/{created.json()['id']}/disable",
            headers=app.dev.headers,
        )
        assert disabled.status_code == 200, disabled.text
        emit("disabled")
        tasks.run_due()
        assert [r.json["data"]["mark"] for r in receiver.accepted()] == ["created"]

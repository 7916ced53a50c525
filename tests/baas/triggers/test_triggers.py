"""Triggers: each committed change fires once, a rolled-back one never; webhooks are
signed, retried with backoff, dead-lettered and redelivered; functions run as targets;
incoming webhooks are stored before they are acknowledged."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import clock, tasks
from gonghui.baas.triggers import schedule
from gonghui.baas.triggers.models import Delivery
from gonghui.baas.triggers.signing import signature
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.baas.conftest import AppHandle
from tests.baas.devapp import deploy, make_app
from tests.baas.triggers.conftest import deliveries
from tests.fixtures import StaffFactory, Tree
from tests.receiver import Receiver, running_receiver

# The receivers listen on loopback, which the operator allows here.
pytestmark = [pytest.mark.database_fallback, pytest.mark.usefixtures("loopback_allowed")]


@pytest.fixture
def app_a(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    return make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "积分应用")


def add_trigger(api: httpx.Client, app: AppHandle, **spec: object) -> dict[str, object]:
    resp = api.post(f"/api/v1/baas/apps/{app.id}/triggers", json=spec, headers=app.dev.headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, object] = resp.json()
    return body


def webhook_trigger(
    api: httpx.Client, app: AppHandle, receiver: Receiver, **extra: object
) -> dict[str, object]:
    return add_trigger(
        api,
        app,
        name="to-crm",
        event="record.created",
        table_name="scores",
        target_kind="webhook",
        webhook_url=receiver.url,
        **extra,
    )


def create_score(api: httpx.Client, app: AppHandle, member: str, points: int) -> httpx.Response:
    return api.post(
        "/api/v1/baas/data/scores/records",
        json={"member": member, "points": points},
        headers={"X-Gonghui-App-Key": app.server_key},
    )


def count_deliveries() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Delivery)) or 0)


def test_each_committed_change_fires_once_and_a_rolled_back_one_never(
    api: httpx.Client, app_a: AppHandle
) -> None:
    api.post(
        f"/api/v1/baas/apps/{app_a.id}/tables/scores/fields",
        json={"name": "ticket", "type": "string", "unique": True},
        headers=app_a.dev.headers,
    )
    with running_receiver() as receiver:
        webhook_trigger(api, app_a, receiver)
        assert create_score(api, app_a, "m1", 3).status_code == 201
        bulk = api.post(
            "/api/v1/baas/data/scores/records/bulk",
            json={
                "records": [
                    {"member": "m2", "points": 1, "ticket": "T1"},
                    {"member": "m3", "points": 1, "ticket": "T1"},
                ]
            },
            headers={"X-Gonghui-App-Key": app_a.server_key},
        )
        assert bulk.status_code == 409
        assert count_deliveries() == 1
        assert tasks.run_due() == 1
        assert tasks.run_due() == 0
        assert len(receiver.requests) == 1
        sent = receiver.requests[0].json
        assert sent["event"] == "record.created"
        assert sent["data"]["record"]["member"] == "m1"
        assert [d["status"] for d in deliveries(api, app_a)] == ["delivered"]


def test_a_filter_decides_which_records_fire(api: httpx.Client, app_a: AppHandle) -> None:
    with running_receiver() as receiver:
        webhook_trigger(api, app_a, receiver, filter={"points": {"gte": 10}})
        for member, points in (("low", 3), ("high", 12), ("edge", 10)):
            create_score(api, app_a, member, points)
        tasks.run_due()
        members = sorted(r.json["data"]["record"]["member"] for r in receiver.requests)
        assert members == ["edge", "high"]


def test_a_failing_receiver_gets_signed_retries_with_backoff_and_one_success(
    api: httpx.Client, app_a: AppHandle
) -> None:
    with running_receiver(script=[500, 503]) as receiver:
        created = webhook_trigger(api, app_a, receiver)
        secret = str(created["secret"])
        create_score(api, app_a, "m1", 5)
        assert tasks.run_due() == 1
        assert tasks.run_due() == 0  # not due again until its backoff has passed
        clock.advance(timedelta(seconds=12))
        assert tasks.run_due() == 1
        clock.advance(timedelta(seconds=12))
        assert tasks.run_due() == 0  # the second retry waits about 20 s
        clock.advance(timedelta(seconds=12))
        assert tasks.run_due() == 1
        assert [r.status for r in receiver.requests] == [500, 503, 200]
        assert len({r.headers["x-gonghui-event-id"] for r in receiver.requests}) == 1
        for request in receiver.requests:
            ts = int(request.headers["x-gonghui-timestamp"])
            assert request.headers["x-gonghui-signature"] == signature(secret, ts, request.body)
        [row] = deliveries(api, app_a)
        detail = api.get(
            f"/api/v1/baas/apps/{app_a.id}/deliveries/{row['id']}", headers=app_a.dev.headers
        ).json()
        assert detail["status"] == "delivered"
        assert [(a["ok"], a["status_code"]) for a in detail["attempt_log"]] == [
            (False, 500),
            (False, 503),
            (True, 200),
        ]


def test_a_trigger_added_or_disabled_after_writes_applies_to_the_next_write(
    api: httpx.Client, app_a: AppHandle
) -> None:
    # The first write finds no trigger, and this process keeps that answer (the record
    # trigger cache): adding one, then disabling it, must still show on the next write.
    assert create_score(api, app_a, "m0", 1).status_code == 201
    with running_receiver() as receiver:
        trigger = webhook_trigger(api, app_a, receiver)
        assert create_score(api, app_a, "m1", 2).status_code == 201
        assert count_deliveries() == 1
        resp = api.post(
            f"/api/v1/baas/apps/{app_a.id}/triggers/{trigger['id']}/disable",
            headers=app_a.dev.headers,
        )
        assert resp.status_code == 200, resp.text
        assert create_score(api, app_a, "m2", 3).status_code == 201
        assert count_deliveries() == 1


def test_after_max_attempts_a_delivery_is_dead_lettered_and_can_be_redelivered(
    api: httpx.Client, app_a: AppHandle
) -> None:
    with running_receiver(script=[500, 500]) as receiver:
        webhook_trigger(api, app_a, receiver, max_attempts=2)
        create_score(api, app_a, "m1", 5)
        tasks.run_due()
        clock.advance(timedelta(seconds=12))
        tasks.run_due()
        clock.advance(timedelta(minutes=10))
        assert tasks.run_due() == 0
        [dead] = deliveries(api, app_a)
        assert (dead["status"], dead["attempts"]) == ("dead", 2)
        assert dead["last_error"] == "HTTP 500: "
        resp = api.post(
            f"/api/v1/baas/apps/{app_a.id}/deliveries/{dead['id']}/redeliver",
            headers=app_a.dev.headers,
        )
        assert resp.json()["status"] == "pending"
        assert tasks.run_due() == 1
        assert [r.status for r in receiver.requests] == [500, 500, 200]
        assert deliveries(api, app_a)[0]["status"] == "delivered"


def test_a_trigger_can_run_a_function(api: httpx.Client, app_a: AppHandle) -> None:
    deploy(
        api,
        app_a,
        "double",
        "def handler(event, context):\n"
        "    record = event['data']['record']\n"
        "    if record['member'].startswith('bonus-'):\n"
        "        return 'skip'\n"
        "    context.table('scores').create("
        "{'member': 'bonus-' + record['member'], 'points': record['points']})\n"
        "    return 'ok'\n",
        runs_as="server",
    )
    add_trigger(
        api,
        app_a,
        name="bonus",
        event="record.created",
        table_name="scores",
        target_kind="function",
        function_name="double",
    )
    create_score(api, app_a, "m1", 4)
    tasks.run_due()  # runs double, whose insert fires the trigger once more
    tasks.run_due()
    rows = api.get(
        "/api/v1/baas/data/scores/records", headers={"X-Gonghui-App-Key": app_a.server_key}
    ).json()["items"]
    assert sorted((r["member"], r["points"]) for r in rows) == [("bonus-m1", 4), ("m1", 4)]
    log = api.get(
        f"/api/v1/baas/apps/{app_a.id}/functions/double/invocations",
        headers=app_a.dev.headers,
    ).json()
    assert [(i["source"], i["result"]) for i in log] == [("trigger", "skip"), ("trigger", "ok")]


def test_an_incoming_webhook_is_stored_before_it_is_acknowledged(
    api: httpx.Client, app_a: AppHandle
) -> None:
    deploy(api, app_a, "inbox", "def handler(event, context):\n    return event['data']['body']\n")
    created = add_trigger(
        api, app_a, name="from-pos", event="incoming", target_kind="function", function_name="inbox"
    )
    url = str(created["incoming_url"]).removeprefix(str(api.base_url).rstrip("/"))
    secret = str(created["secret"])
    body = json.dumps({"order": 17}).encode()
    ts = int(clock.now().timestamp())

    forged = api.post(
        url,
        content=body,
        headers={"X-Gonghui-Timestamp": str(ts), "X-Gonghui-Signature": "v1=" + "0" * 64},
    )
    assert forged.status_code == 401
    stale_ts = ts - 3600
    stale = api.post(
        url,
        content=body,
        headers={
            "X-Gonghui-Timestamp": str(stale_ts),
            "X-Gonghui-Signature": signature(secret, stale_ts, body),
        },
    )
    assert stale.status_code == 401
    assert count_deliveries() == 0

    ok = api.post(
        url,
        content=body,
        headers={
            "X-Gonghui-Timestamp": str(ts),
            "X-Gonghui-Signature": signature(secret, ts, body),
        },
    )
    assert ok.status_code == 202
    assert count_deliveries() == 1
    tasks.run_due()
    log = api.get(
        f"/api/v1/baas/apps/{app_a.id}/functions/inbox/invocations", headers=app_a.dev.headers
    ).json()
    assert [i["result"] for i in log] == [{"order": 17}]


def test_a_cron_trigger_fires_once_per_tick(api: httpx.Client, app_a: AppHandle) -> None:
    with running_receiver() as receiver:
        add_trigger(
            api,
            app_a,
            name="daily",
            event="schedule",
            cron="0 9 * * *",
            target_kind="webhook",
            webhook_url=receiver.url,
        )
        assert schedule.run_due() == 0
        clock.advance(timedelta(days=1))
        assert schedule.run_due() == 1
        assert schedule.run_due() == 0  # the same tick never fires twice
        clock.advance(timedelta(days=1))
        assert schedule.run_due() == 1
        tasks.run_due()
        ticks = [r.json["data"]["tick"] for r in receiver.requests]
        assert len(ticks) == 2
        assert all(t.endswith("09:00:00+00:00") for t in ticks)


def test_trigger_definitions_are_refused_with_the_field_that_is_wrong(
    api: httpx.Client, app_a: AppHandle, tree: Tree, make_staff: StaffFactory
) -> None:
    bad = [
        (
            {
                "event": "schedule",
                "cron": "every day",
                "target_kind": "webhook",
                "webhook_url": "http://x",
            },
            "cron",
        ),
        (
            {"event": "record.created", "target_kind": "webhook", "webhook_url": "http://x"},
            "table_name",
        ),
        (
            {
                "event": "record.created",
                "table_name": "scores",
                "target_kind": "webhook",
                "webhook_url": "ftp://x",
            },
            "webhook_url",
        ),
        (
            {
                "event": "record.created",
                "table_name": "scores",
                "target_kind": "webhook",
                "webhook_url": "http://x",
                "filter": {"points": {"between": 1}},
            },
            "where.points",
        ),
    ]
    for spec, field in bad:
        resp = api.post(
            f"/api/v1/baas/apps/{app_a.id}/triggers",
            json={"name": "t", **spec},
            headers=app_a.dev.headers,
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["details"][0]["field"].startswith(field)
    other_city = make_staff(tree.city_b, Role.DEVELOPER)
    assert (
        api.get(f"/api/v1/baas/apps/{app_a.id}/triggers", headers=other_city.headers).status_code
        == 404
    )
    assert api.get(f"/api/v1/baas/apps/{app_a.id}/triggers", headers=app_a.dev.headers).json() == []


def test_the_background_dispatcher_delivers_without_being_asked(
    api: httpx.Client, app_a: AppHandle
) -> None:
    with running_receiver() as receiver:
        webhook_trigger(api, app_a, receiver)
        tasks.runtime.start()
        try:
            create_score(api, app_a, "m1", 1)
            deadline = time.monotonic() + 20
            while not receiver.accepted() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            tasks.runtime.stop()
        assert len(receiver.accepted()) == 1

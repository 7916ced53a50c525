"""Triggers across real server processes: two processes fire each cron tick once; a
process killed with SIGKILL while deliveries are pending loses none of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime

import httpx
import pytest

from gonghui.orgs.models import Role
from tests.baas.conftest import AppHandle
from tests.baas.devapp import make_app
from tests.faults import eventually
from tests.fixtures import StaffFactory, Tree
from tests.receiver import Receiver, running_receiver
from tests.serverproc import ServerProcess

# The receivers listen on loopback, which the operator allows here (and in the servers).
pytestmark = [
    pytest.mark.database_fallback,
    pytest.mark.slow,
    pytest.mark.usefixtures("loopback_allowed"),
]

FAST = {
    "GONGHUI_SCHEDULER_INTERVAL_S": "0.1",
    "GONGHUI_TASK_POLL_S": "0.1",
    "GONGHUI_TASK_BACKOFF_BASE_S": "0.2",
    "GONGHUI_TASK_HEARTBEAT_TIMEOUT_S": "2",
    "GONGHUI_FUNCTIONS_MIN_WORKERS": "0",
    "GONGHUI_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.1/32"]',
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def app_a(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    return make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "多进程")


def test_two_processes_fire_each_cron_tick_exactly_once(
    api: httpx.Client, app_a: AppHandle, receiver: Receiver
) -> None:
    resp = api.post(
        f"/api/v1/baas/apps/{app_a.id}/triggers",
        json={
            "name": "every-second",
            "event": "schedule",
            "cron": "* * * * * *",
            "target_kind": "webhook",
            "webhook_url": receiver.url,
        },
        headers=app_a.dev.headers,
    )
    assert resp.status_code == 201, resp.text
    with ExitStack() as stack:
        for _ in range(2):
            server = ServerProcess(env=FAST).start()
            stack.callback(server.stop)
        eventually("four deliveries accepted", lambda: len(receiver.accepted()) >= 4, within_s=60)
        api.post(
            f"/api/v1/baas/apps/{app_a.id}/triggers/{resp.json()['id']}/disable",
            headers=app_a.dev.headers,
        )

        def drained() -> bool:
            rows = api.get(
                f"/api/v1/baas/apps/{app_a.id}/deliveries?limit=200",
                headers=app_a.dev.headers,
            ).json()
            return all(r["status"] == "delivered" for r in rows)

        eventually("the deliveries drained", drained, within_s=60)
    ticks = [r.json["data"]["tick"] for r in receiver.accepted()]
    assert len(ticks) == len(set(ticks)), "a tick fired twice"
    seconds = sorted(int(datetime.fromisoformat(t).timestamp()) for t in ticks)
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), "a tick was skipped"


def test_deliveries_pending_at_a_sigkill_are_all_delivered_after_restart(
    api: httpx.Client, app_a: AppHandle, receiver: Receiver
) -> None:
    resp = api.post(
        f"/api/v1/baas/apps/{app_a.id}/triggers",
        json={
            "name": "to-crm",
            "event": "record.created",
            "table_name": "scores",
            "target_kind": "webhook",
            "webhook_url": receiver.url,
            "max_attempts": 20,
        },
        headers=app_a.dev.headers,
    )
    assert resp.status_code == 201
    receiver.down = True
    first = ServerProcess(env=FAST).start()
    created = []
    try:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            for i in range(20):
                r = client.post(
                    "/api/v1/baas/data/scores/records",
                    json={"member": f"m{i}", "points": i},
                    headers={"X-Gonghui-App-Key": app_a.server_key},
                )
                assert r.status_code == 201, r.text
                created.append(r.json()["id"])
        eventually("the outage being retried", lambda: len(receiver.requests) >= 5, within_s=60)
    finally:
        first.kill()
    receiver.down = False
    second = ServerProcess(env=FAST).start()
    try:
        eventually(
            "every created record delivered once the second process runs",
            lambda: {r.json["data"]["record"]["id"] for r in receiver.accepted()} == set(created),
            within_s=60,
        )
    finally:
        second.stop()
    rows = api.get(
        f"/api/v1/baas/apps/{app_a.id}/deliveries?limit=200", headers=app_a.dev.headers
    ).json()
    assert len(rows) == 20
    assert {r["status"] for r in rows} == {"delivered"}

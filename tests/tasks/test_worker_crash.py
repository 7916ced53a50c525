"""``kill -9`` of a worker during webhook deliveries: the API process (this test's server,
which runs no worker) stores the events; a worker takes them and is killed while a
delivery is in flight; another worker sends everything the first one held, once its
heartbeats stop. Every committed event is delivered; none is dead-lettered."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.tasks.models import Task
from tests.baas.devapp import make_app
from tests.faults import eventually
from tests.fixtures import StaffFactory, Tree
from tests.receiver import Receiver, running_receiver
from tests.serverproc import WorkerProcess

pytestmark = [
    pytest.mark.database_fallback,
    pytest.mark.slow,
    pytest.mark.usefixtures("loopback_allowed"),
]

FAST = {
    "GONGHUI_TASK_POLL_S": "0.1",
    "GONGHUI_TASK_HEARTBEAT_TIMEOUT_S": "2",
    "GONGHUI_TASK_BACKOFF_BASE_S": "0.2",
    "GONGHUI_FUNCTIONS_MIN_WORKERS": "0",
    "GONGHUI_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.1/32"]',
}
RECORDS = 30


def delivered_ids(receiver: Receiver) -> set[int]:
    """The records whose event the receiver got whole (the request cut by the kill may
    have arrived with part of its body)."""
    ids = set()
    for request in receiver.accepted():
        try:
            ids.add(request.json["data"]["record"]["id"])
        except ValueError:
            continue
    return ids


def test_deliveries_held_by_a_killed_worker_are_all_sent_by_another(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "崩溃")
    with running_receiver(mode="hang") as receiver:
        resp = api.post(
            f"/api/v1/baas/apps/{app.id}/triggers",
            json={
                "name": "to-crm",
                "event": "record.created",
                "table_name": "scores",
                "target_kind": "webhook",
                "webhook_url": receiver.url,
            },
            headers=app.dev.headers,
        )
        assert resp.status_code == 201, resp.text
        created = set()
        for i in range(RECORDS):
            r = api.post(
                "/api/v1/baas/data/scores/records",
                json={"member": f"m{i}", "points": i},
                headers={"X-Gonghui-App-Key": app.server_key},
            )
            assert r.status_code == 201, r.text
            created.add(r.json()["id"])

        first = WorkerProcess(env=FAST).start()
        try:
            assert receiver.entered.wait(60), first.log_tail()  # a delivery is in flight
        finally:
            first.kill()
        receiver.mode = "answer"
        receiver.release.set()
        second = WorkerProcess(env=FAST).start()
        try:
            eventually(
                "every created record delivered",
                lambda: delivered_ids(receiver) >= created,
                within_s=90,
            )

            def settled() -> bool:
                with unit_of_work(read_only=True) as session:
                    return set(session.scalars(select(Task.status).where(Task.key.is_(None)))) == {
                        "done"
                    }

            eventually("the queue settled", settled, within_s=90)
        finally:
            second.stop()
    rows = api.get(
        f"/api/v1/baas/apps/{app.id}/deliveries?limit=200", headers=app.dev.headers
    ).json()
    assert len(rows) == RECORDS
    assert {r["status"] for r in rows} == {"delivered"}
    with unit_of_work(read_only=True) as session:
        attempts = session.scalars(select(Task.attempts).where(Task.key.is_(None))).all()
    assert len(attempts) == RECORDS
    assert max(attempts) <= 2  # the one cut short by the kill ran again, once

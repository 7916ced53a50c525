"""Operators read the task queue's depth, workers and dead letters, and run a dead task
again (audited): platform admins only."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from gonghui import clock, tasks
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.tasks.models import Task
from tests.fixtures import StaffFactory, Tree, WriterLoad
from tests.operations.conftest import queue_in_every_state

pytestmark = pytest.mark.database_fallback


def _status(task_id: int) -> str:
    with unit_of_work(read_only=True) as session:
        status = session.scalar(select(Task.status).where(Task.id == task_id))
    assert status is not None
    return status


def _requeue_audits() -> list[tuple[int | None, str | None]]:
    with unit_of_work(read_only=True) as session:
        return [
            (e.actor_user_id, e.subject_id)
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "tasks.requeue"))
        ]


def test_the_queue_counts_tasks_by_name_and_state_with_its_lag_and_live_workers(
    api: httpx.Client, make_staff: StaffFactory, request: pytest.FixtureRequest
) -> None:
    admin = make_staff(None, None, platform_admin=True)
    built = queue_in_every_state(request)
    resp = api.get("/api/v1/ops/queue", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["counts"] == [
        {"name": "tests.ops_job", "state": "dead", "count": 1},
        {"name": "tests.ops_job", "state": "due", "count": 1},
        {"name": "tests.ops_job", "state": "running", "count": 1},
        {"name": "tests.ops_job", "state": "waiting", "count": 1},
        {"name": "tests.ops_report", "state": "waiting", "count": 1},
    ]
    assert 20.0 <= body["oldest_due_s"] < 30.0
    [worker] = body["workers"]  # the one that stopped beating is not listed
    assert (worker["id"], worker["host"], worker["pid"], worker["threads"]) == (
        built.worker_id,
        "worker-1.example",
        4242,
        8,
    )


def test_tasks_giving_way_to_members_are_counted_held_and_left_out_of_the_lag(
    api: httpx.Client, make_staff: StaffFactory, writer_load: WriterLoad
) -> None:
    admin = make_staff(None, None, platform_admin=True)
    with unit_of_work() as session:
        tasks.defer_many(session, "tests.ops_send", [{}, {}])
    clock.advance(timedelta(seconds=20))
    with unit_of_work() as session:
        tasks.defer(session, "tests.ops_job")
    clock.advance(timedelta(seconds=5))

    def read() -> tuple[list[tuple[str, str, int]], float]:
        resp = api.get("/api/v1/ops/queue", headers=admin.headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return [(c["name"], c["state"], c["count"]) for c in body["counts"]], body["oldest_due_s"]

    writer_load(0.9)  # members' claims keep the writer busy: the sends give way
    counts, lag = read()
    assert counts == [("tests.ops_job", "due", 1), ("tests.ops_send", "held", 2)]
    assert 5.0 <= lag < 10.0  # the job's, not the held sends'
    writer_load(0.1)  # the rush is over
    counts, lag = read()
    assert counts == [("tests.ops_job", "due", 1), ("tests.ops_send", "due", 2)]
    assert 25.0 <= lag < 30.0
    writer_load(0.9)
    clock.advance(timedelta(seconds=10))  # past the sends' bound: they go, held or not
    counts, lag = read()
    assert counts == [("tests.ops_job", "due", 1), ("tests.ops_send", "due", 2)]
    assert 35.0 <= lag < 40.0


def test_dead_tasks_are_listed_newest_first_by_page_without_their_arguments(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    admin = make_staff(None, None, platform_admin=True)
    with unit_of_work() as session:
        ids = [tasks.defer(session, "tests.ops_job", fail=True) for _ in range(3)]
    assert tasks.run_due() == 3
    first = api.get("/api/v1/ops/queue/dead", params={"limit": 2}, headers=admin.headers).json()
    assert [i["id"] for i in first["items"]] == [ids[2], ids[1]]
    item = first["items"][0]
    assert set(item) == {
        "id",
        "name",
        "attempts",
        "last_error",
        "request_id",
        "created_at",
        "finished_at",
    }
    assert (item["name"], item["attempts"], item["last_error"]) == (
        "tests.ops_job",
        1,
        "RuntimeError: the receiver is down",
    )
    assert first["next_before_id"] == ids[1]
    second = api.get(
        "/api/v1/ops/queue/dead",
        params={"limit": 2, "before": first["next_before_id"]},
        headers=admin.headers,
    ).json()
    assert [i["id"] for i in second["items"]] == [ids[0]]
    assert second["next_before_id"] is None


def test_a_platform_admin_runs_a_dead_task_again_and_it_is_audited(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    admin = make_staff(None, None, platform_admin=True)
    with unit_of_work() as session:
        task_id = tasks.defer(session, "tests.ops_job", fail=True)
    assert tasks.run_due() == 1
    resp = api.post(f"/api/v1/ops/queue/tasks/{task_id}/requeue", headers=admin.headers)
    assert resp.status_code == 204, resp.text
    assert _status(task_id) == "queued"
    assert _requeue_audits() == [(admin.user_id, str(task_id))]
    assert tasks.run_due() == 1  # it runs (and fails) again
    assert _status(task_id) == "dead"


def test_a_task_that_is_not_dead_is_not_run_again(
    api: httpx.Client, make_staff: StaffFactory
) -> None:
    admin = make_staff(None, None, platform_admin=True)
    with unit_of_work() as session:
        task_id = tasks.defer(session, "tests.ops_job")
    resp = api.post(f"/api/v1/ops/queue/tasks/{task_id}/requeue", headers=admin.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "ops.task_not_dead"
    assert tasks.run_due() == 1
    resp = api.post(f"/api/v1/ops/queue/tasks/{task_id}/requeue", headers=admin.headers)
    assert (resp.status_code, resp.json()["error"]["details"]) == (409, {"status": "done"})
    missing = api.post(f"/api/v1/ops/queue/tasks/{task_id + 1}/requeue", headers=admin.headers)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ops.task_not_found")
    assert _status(task_id) == "done"
    assert _requeue_audits() == []


def test_staff_who_are_not_platform_admins_are_refused(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    province_admin = make_staff(tree.province, Role.ADMIN)
    with unit_of_work() as session:
        task_id = tasks.defer(session, "tests.ops_job", fail=True)
    assert tasks.run_due() == 1
    for method, path in [
        ("GET", "/api/v1/ops/queue"),
        ("GET", "/api/v1/ops/queue/dead"),
        ("POST", f"/api/v1/ops/queue/tasks/{task_id}/requeue"),
    ]:
        resp = api.request(method, path, headers=province_admin.headers)
        assert resp.status_code == 403, path
        assert resp.json()["error"]["code"] == "ops.not_platform_admin"
    assert api.get("/api/v1/ops/queue").status_code == 401
    assert _status(task_id) == "dead"
    assert _requeue_audits() == []

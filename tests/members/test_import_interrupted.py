"""A roster import whose server is killed mid-way does not stay "running" for ever, and
its upload (plain personal data) does not stay on disk; nor do finished imports' uploads."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import housekeeping
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members import roster_import
from gonghui.members.models import ImportJob, ImportStatus, RosterEntry
from gonghui.members.roster_import import run as import_run
from gonghui.orgs.models import Role
from gonghui.storage import get_store
from gonghui.tenancy import SYSTEM
from tests.faults import eventually
from tests.fixtures import StaffFactory, Tree
from tests.members.conftest import csv_bytes, id_number
from tests.serverproc import ServerProcess

# Past LARGE_FILE_BYTES, so that the import runs the way big ones do (worker processes).
ROWS = 130_000
# The second server treats an import silent for a second as dead, and looks often.
REAPING = {"GONGHUI_ROSTER_IMPORT_STALE_S": "1", "GONGHUI_HOUSEKEEPING_INTERVAL_S": "0.2"}


def big_roster(rows: int) -> bytes:
    """Distinct people: a birth day per thousand, a sequence number within it."""
    born = date(1970, 1, 1)
    return csv_bytes(
        [
            [
                f"工人{i}",
                id_number(f"440106{born + timedelta(days=i // 1000):%Y%m%d}{i % 1000:03d}"),
                f"138{i:08d}",
                f"M{i:07d}",
                "",
                "2020-01-01",
            ]
            for i in range(rows)
        ]
    )


@pytest.mark.slow
def test_import_killed_mid_way_is_marked_interrupted_and_its_upload_deleted(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    data = big_roster(ROWS)
    assert len(data) >= import_run.LARGE_FILE_BYTES
    first = ServerProcess().start()
    try:
        resp = httpx.post(
            f"{first.url}/api/v1/orgs/{tree.city_a}/roster/imports",
            files={"file": ("big.csv", data, "text/csv")},
            headers=operator.headers,
            timeout=120,
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]

        def job() -> dict[str, Any]:
            seen = api.get(f"/api/v1/roster/imports/{job_id}", headers=operator.headers)
            assert seen.status_code == 200, seen.text
            body: dict[str, Any] = seen.json()
            return body

        eventually("the import under way", lambda: job()["rows_done"] > 0, within_s=120)
    finally:
        first.kill()
    killed = job()
    assert killed["status"] == "running"
    assert 0 < killed["rows_done"] < ROWS
    store = get_store()
    assert store.exists(roster_import.upload_key(job_id))

    second = ServerProcess(env=REAPING).start()
    try:
        eventually("the import ended", lambda: job()["status"] != "running", within_s=120)
    finally:
        second.stop()
    reaped = job()
    assert reaped["status"] == "failed"
    assert reaped["error"] == roster_import.INTERRUPTED
    assert not store.exists(roster_import.upload_key(job_id))
    with unit_of_work(read_only=True) as session:
        # Progress never ran ahead of the data: what the job says it wrote is on file.
        stored = session.scalar(select(func.count()).select_from(RosterEntry))
        assert stored == reaped["rows_ok"] == killed["rows_ok"]
        audits = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "members.roster_import",
                AuditEntry.subject_id == str(job_id),
            )
        ).all()
        assert [a.reason for a in audits] == [roster_import.INTERRUPTED]


def test_a_live_import_is_not_reaped_and_a_finished_ones_upload_is_deleted(tree: Tree) -> None:
    """A process that died after finishing an import but before deleting its upload
    leaves the file behind; housekeeping deletes it. A running import with a fresh
    heartbeat is left alone."""
    store = get_store()
    data = csv_bytes([["张三", id_number("44010619900307123")]], header=["姓名", "身份证号"])
    with unit_of_work() as session:
        finished = roster_import.create_job(
            session, actor=SYSTEM, org_id=tree.city_a, filename="a.csv"
        )
        running = roster_import.create_job(
            session, actor=SYSTEM, org_id=tree.city_a, filename="b.csv"
        )
        for job in (finished, running):
            job.stored_path = roster_import.upload_key(job.id)
            store.put(job.stored_path, [data])
        finished_id, running_id = finished.id, running.id
    roster_import.run_import(job_id=finished_id, actor=SYSTEM, source=io.BytesIO(data))
    with unit_of_work() as session:
        live = session.get(ImportJob, running_id)
        assert live is not None
        live.status = ImportStatus.RUNNING

    assert housekeeping.run()["roster_imports"] == 1
    assert not store.exists(roster_import.upload_key(finished_id))
    assert store.exists(roster_import.upload_key(running_id))
    with unit_of_work(read_only=True) as session:
        done = session.get(ImportJob, finished_id)
        live = session.get(ImportJob, running_id)
        assert done is not None
        assert live is not None
        assert (done.status, done.stored_path) == (ImportStatus.DONE, "")
        assert (live.status, live.error) == (ImportStatus.RUNNING, None)
    assert housekeeping.run()["roster_imports"] == 0

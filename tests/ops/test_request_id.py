"""A request's id follows its work: every log record made while serving it, the hot
writer's jobs (alone or in a batch of many requests' draws), the events they store, and
the deliveries of those events, in whichever process sends them."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.accounts.principal import load
from gonghui.activities.lottery.draw import draw as draw_op
from gonghui.audit.models import AuditEntry
from gonghui.baas.triggers.models import Delivery
from gonghui.db import unit_of_work
from gonghui.hotwrite.writer import local_writer
from gonghui.observability import JsonFormatter, TextFormatter
from gonghui.orgs.models import Role
from tests.activities.conftest import (
    Member,
    MemberFactory,
    create_activity,
    create_member,
    draw,
    lottery_config,
)
from tests.baas.conftest import AppHandle
from tests.baas.devapp import make_app
from tests.fixtures import StaffFactory, Tree
from tests.members.conftest import csv_bytes
from tests.receiver import Receiver, running_receiver
from tests.serverproc import ServerProcess

PATIENCE_S = 30
_busy = threading.Event()
_release = threading.Event()


@pytest.fixture
def make_member() -> MemberFactory:
    return create_member


def hold_writer(session: Session) -> None:
    """Keep the writer busy until the test has queued what it wants batched together."""
    _busy.set()
    assert _release.wait(PATIENCE_S)


@pytest.fixture
def held_writer() -> Iterator[None]:
    _busy.clear()
    _release.clear()
    yield
    _release.set()  # never leave the writer held


def prize_won_trigger(api: httpx.Client, app: AppHandle, url: str) -> None:
    resp = api.post(
        f"/api/v1/baas/apps/{app.id}/triggers",
        json={
            "name": "prize-notice",
            "event": "activity.prize_won",
            "target_kind": "webhook",
            "webhook_url": url,
        },
        headers=app.dev.headers,
    )
    assert resp.status_code == 201, resp.text


def always_wins(api: httpx.Client, headers: dict[str, str], org_id: int) -> int:
    config = lottery_config(
        [{"name": "十元券", "kind": "voucher", "weight": 1, "stock": 10, "value": 1000}]
    )
    return int(create_activity(api, headers, org_id, config=config)["id"])


def deliveries_by_member() -> dict[int, str | None]:
    with unit_of_work() as session:
        rows = session.scalars(select(Delivery)).all()
        return {row.payload["membership_id"]: row.request_id for row in rows}


def test_a_log_record_made_while_serving_a_request_carries_its_id(
    api: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gonghui.access")
    api.get("/healthz", headers={"X-Request-ID": "caller-chosen-0001"})

    def made() -> list[logging.LogRecord]:
        # Our access line (uvicorn's own, when another test left it on, carries the id too).
        return [
            r
            for r in caplog.records
            if r.name == "gonghui.access" and getattr(r, "request_id", None) == "caller-chosen-0001"
        ]

    deadline = time.monotonic() + PATIENCE_S
    while not made() and time.monotonic() < deadline:
        time.sleep(0.01)  # the access line is written once the response has gone out
    (record,) = made()
    # Formatted later, in another thread (here: the test's), it still says whose it is.
    assert json.loads(JsonFormatter().format(record))["request_id"] == "caller-chosen-0001"
    assert TextFormatter().format(record).endswith("[request_id=caller-chosen-0001]")


def test_a_draws_event_carries_the_drawing_request_id(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "中奖通知")
    prize_won_trigger(api, app, "https://crm.example.com/hook")
    activity = always_wins(api, make_staff(tree.city_a, Role.OPERATOR).headers, tree.city_a)
    member = make_member(tree.city_a)
    resp = draw(api, activity, member.headers, **{"X-Request-ID": "member-draw-0001"})
    assert resp.json()["outcome"] == "won"
    assert deliveries_by_member() == {member.membership_id: "member-draw-0001"}


@pytest.mark.usefixtures("held_writer")
def test_each_draw_of_a_batch_keeps_its_own_request_id(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    """Three members' draws run as one batch (one call of the batch form, one savepoint):
    each prize's event still names the request of the member who won it."""
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "中奖通知")
    prize_won_trigger(api, app, "https://crm.example.com/hook")
    activity = always_wins(api, make_staff(tree.city_a, Role.OPERATOR).headers, tree.city_a)
    members = [make_member(tree.city_a) for _ in range(3)]
    held = local_writer.submit(hold_writer, {})
    assert _busy.wait(PATIENCE_S)
    futures: list[Future[Any]] = [
        local_writer.submit(draw_op, draw_call(m, activity), request_id=f"batch-req-{i:04d}")
        for i, m in enumerate(members)
    ]
    _release.set()
    held.result(PATIENCE_S)
    assert [f.result(PATIENCE_S)["outcome"] for f in futures] == ["won"] * 3
    assert deliveries_by_member() == {
        m.membership_id: f"batch-req-{i:04d}" for i, m in enumerate(members)
    }


def test_a_roster_import_runs_under_the_uploading_request_id(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/roster/imports",
        files={"file": ("roster.csv", csv_bytes([]), "text/csv")},
        headers={**operator.headers, "X-Request-ID": "roster-upload-0001"},
    )
    assert resp.status_code == 202, resp.text
    tasks.run_due()
    with unit_of_work(read_only=True) as session:
        audited = session.scalars(
            select(AuditEntry.request_id).where(AuditEntry.action == "members.roster_import")
        ).all()
    assert audited == ["roster-upload-0001"]  # written by the import, a task run later


def draw_call(member: Member, activity_id: int) -> dict[str, Any]:
    with unit_of_work(read_only=True) as session:
        info = load(session, user_id=member.user_id, session_id=member.session_id).member
    return {
        "member": info,
        "activity_id": activity_id,
        "client_entropy": "e",
        "idempotency_key": None,
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.mark.slow
@pytest.mark.usefixtures("loopback_allowed")
def test_a_delivery_logs_the_id_of_the_request_that_caused_it(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    receiver: Receiver,
) -> None:
    """Across processes: a server process takes the draw, the writer process commits it and
    stores the event, a server process's dispatcher delivers it; the delivery's log line
    carries the id of the member's request."""
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "中奖通知")
    prize_won_trigger(api, app, receiver.url)
    activity = always_wins(api, make_staff(tree.city_a, Role.OPERATOR).headers, tree.city_a)
    member = make_member(tree.city_a)
    server = ServerProcess(
        workers=2,
        env={
            "GONGHUI_LOG_LEVEL": "INFO",
            "GONGHUI_TASK_POLL_S": "0.1",
            "GONGHUI_FUNCTIONS_MIN_WORKERS": "0",
            "GONGHUI_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.1/32"]',
        },
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            resp = draw(client, activity, member.headers, **{"X-Request-ID": "origin-req-0001"})
        assert resp.json()["outcome"] == "won"
        deadline = time.monotonic() + 60
        while not receiver.accepted() and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for another process's work, bounded above
        assert len(receiver.accepted()) == 1
        lines = _logged(server)
        while not any(line.get("msg") == "delivered" for line in lines):
            assert time.monotonic() < deadline, "no delivery logged"
            time.sleep(0.05)
            lines = _logged(server)
    finally:
        server.stop()
    (delivered,) = [line for line in lines if line.get("msg") == "delivered"]
    assert delivered["request_id"] == "origin-req-0001"
    assert delivered["event"] == "activity.prize_won"
    (access,) = [
        line
        for line in lines
        if line.get("logger") == "gonghui.access" and line.get("path", "").endswith("/draws")
    ]
    assert access["request_id"] == "origin-req-0001"


def _logged(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for text in server.log_path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue
    return lines

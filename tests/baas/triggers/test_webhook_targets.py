"""Webhooks reach public addresses only: a private target is refused when the trigger is
defined, a name that resolves to one is never sent to, a slow or oversized answer is cut, and
one app's hanging endpoint does not hold up another app's deliveries."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import tasks
from gonghui.baas.triggers.models import Trigger
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.baas.conftest import AppHandle
from tests.baas.devapp import make_app
from tests.baas.triggers.conftest import deliveries
from tests.fixtures import FakeDns, StaffFactory, Tree
from tests.receiver import running_receiver

WAIT_S = 60.0  # how long a test waits for something that must happen; never a measure


@pytest.fixture
def app_a(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    return make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "积分应用")


@pytest.fixture
def app_b(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    return make_app(api, make_staff(tree.city_b, Role.DEVELOPER), tree.city_b, "另一应用")


def define_webhook(api: httpx.Client, app: AppHandle, url: str) -> httpx.Response:
    return api.post(
        f"/api/v1/baas/apps/{app.id}/triggers",
        json={
            "name": "to-crm",
            "event": "record.created",
            "table_name": "scores",
            "target_kind": "webhook",
            "webhook_url": url,
        },
        headers=app.dev.headers,
    )


def create_score(api: httpx.Client, app: AppHandle, member: str) -> None:
    resp = api.post(
        "/api/v1/baas/data/scores/records",
        json={"member": member, "points": 1},
        headers={"X-Gonghui-App-Key": app.server_key},
    )
    assert resp.status_code == 201, resp.text


def trigger_count() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Trigger)) or 0)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://0.0.0.0:{port}/hook",
    ],
)
def test_a_webhook_to_a_private_address_is_refused_when_it_is_defined(
    api: httpx.Client, app_a: AppHandle, target: str
) -> None:
    with running_receiver() as receiver:
        resp = define_webhook(api, app_a, target.format(port=receiver.port))
        assert resp.status_code == 422
        [detail] = resp.json()["error"]["details"]
        assert (detail["field"], detail["code"]) == ("webhook_url", "triggers.bad_url")
        assert detail["message"].endswith("is not a public address")
        assert trigger_count() == 0
        create_score(api, app_a, "m1")
        assert tasks.run_due() == 0
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://crm:secret@crm.example.com/hook", "a URL without user name or password"),
        ("http://crm_example.com/hook", "a valid host name"),
        ("javascript://crm.example.com/hook", "an http:// or https:// URL"),
    ],
)
def test_a_webhook_url_that_is_not_a_plain_http_address_is_refused(
    api: httpx.Client, app_a: AppHandle, url: str, message: str
) -> None:
    resp = define_webhook(api, app_a, url)
    assert resp.status_code == 422
    assert resp.json()["error"]["details"] == [
        {"field": "webhook_url", "code": "triggers.bad_url", "message": message}
    ]
    assert trigger_count() == 0


def test_a_webhook_reaches_loopback_only_when_the_operator_allows_it(
    api: httpx.Client, app_a: AppHandle, loopback_allowed: None
) -> None:
    with running_receiver() as receiver:
        assert define_webhook(api, app_a, receiver.url).status_code == 201
        create_score(api, app_a, "m1")
        assert tasks.run_due() == 1
    assert [r.json["data"]["record"]["member"] for r in receiver.requests] == ["m1"]
    assert [d["status"] for d in deliveries(api, app_a)] == ["delivered"]


def test_a_webhook_name_that_resolves_to_loopback_is_never_sent(
    api: httpx.Client, app_a: AppHandle, fake_dns: FakeDns
) -> None:
    with running_receiver() as receiver:
        fake_dns.answers["crm.partner.example"] = ["127.0.0.1"]
        url = f"http://crm.partner.example:{receiver.port}/hook"
        assert define_webhook(api, app_a, url).status_code == 201
        create_score(api, app_a, "m1")
        assert tasks.run_due() == 1
    assert receiver.requests == []
    [row] = deliveries(api, app_a)
    assert row["status"] == "pending"
    assert row["last_error"] == (
        "outbound.address_refused: crm.partner.example does not resolve to a public address"
    )


def test_a_webhook_that_trickles_its_answer_fails_at_the_deadline(
    api: httpx.Client,
    app_a: AppHandle,
    loopback_allowed: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "outbound_timeout_s", 0.3)
    with running_receiver(mode="trickle") as receiver:
        define_webhook(api, app_a, receiver.url)
        create_score(api, app_a, "m1")
        assert tasks.run_due() == 1
        receiver.release.set()
    [row] = deliveries(api, app_a)
    assert (row["status"], row["last_error"]) == (
        "pending",
        "outbound.deadline: no complete answer within 0.3 s",
    )


def test_a_webhook_answer_is_not_read_past_its_cap(
    api: httpx.Client, app_a: AppHandle, loopback_allowed: None
) -> None:
    flood = 64 * 1024 * 1024
    with running_receiver(mode="flood", flood_bytes=flood) as receiver:
        define_webhook(api, app_a, receiver.url)
        create_score(api, app_a, "m1")
        assert tasks.run_due() == 1
        receiver.release.set()
    assert [d["status"] for d in deliveries(api, app_a)] == ["delivered"]
    assert receiver.sent < flood


def test_an_app_whose_endpoint_hangs_does_not_hold_up_another_apps_deliveries(
    api: httpx.Client,
    app_a: AppHandle,
    app_b: AppHandle,
    loopback_allowed: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "outbound_timeout_s", WAIT_S)
    with running_receiver(mode="hang") as hanging, running_receiver() as answering:
        define_webhook(api, app_a, hanging.url)
        define_webhook(api, app_b, answering.url)
        tasks.runtime.start()
        try:
            create_score(api, app_a, "a1")
            assert hanging.entered.wait(WAIT_S)
            create_score(api, app_b, "b1")
            assert answering.entered.wait(WAIT_S)
            # B was sent while A's call was still open: A has no answer, no failure yet.
            [a_row] = deliveries(api, app_a)
            assert (a_row["status"], a_row["last_error"]) == ("pending", None)
            hanging.release.set()
        finally:
            hanging.release.set()
            tasks.runtime.stop()  # waits for the deliveries in flight
    assert [d["status"] for d in deliveries(api, app_a)] == ["delivered"]
    assert [d["status"] for d in deliveries(api, app_b)] == ["delivered"]
    assert [r.json["data"]["record"]["member"] for r in answering.requests] == ["b1"]

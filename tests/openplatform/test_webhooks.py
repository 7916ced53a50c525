"""An integrator's webhooks: a client's endpoints receive the union's events of its org's
subtree as Standard Webhooks (the signature checked by the specification's reference
library, not by our code), retried with the same ``webhook-id``, dead-lettered and
redelivered; disabled endpoints get nothing; a payload names the member only by the
client's pairwise ``sub``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from gonghui import clock, tasks
from gonghui.audit.models import AuditEntry
from gonghui.benefits import service as benefits
from gonghui.benefits.models import Voucher
from gonghui.db import unit_of_work
from gonghui.openplatform.identity import pairwise_subject
from gonghui.orgs import service as orgs
from gonghui.orgs.models import OrgLevel, Role
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import Member, create_activity, create_member, lottery_config
from tests.fixtures import Staff, StaffFactory, Tree, statements
from tests.openplatform.conftest import ClientFactory, RegisteredClient
from tests.receiver import Received, running_receiver

# The receivers listen on loopback, which the operator allows here; the stories count the
# webhooks' tasks alone, not members' notifications.
pytestmark = pytest.mark.usefixtures("loopback_allowed", "quiet_notifications")

ALL_EVENTS = ["activity.published", "member.verified", "prize.won", "voucher.used", "order.paid"]


def verify(secret: str, request: Received) -> bool:
    """Whether the Standard Webhooks reference library signs the request as we did (its
    ``verify`` also checks the timestamp against the real time, which the tests that
    advance the clock do not keep)."""
    timestamp = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(request.headers["webhook-id"], timestamp, request.body.decode())
    return expected in request.headers["webhook-signature"].split(" ")


def add_webhook(
    api: httpx.Client,
    staff: Staff,
    client: RegisteredClient,
    url: str,
    events: list[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    resp = api.post(
        f"/api/v1/oauth-clients/{client.id}/webhooks",
        json={"url": url, "events": events or ALL_EVENTS, **fields},
        headers=staff.headers,
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def delivery_log(
    api: httpx.Client, staff: Staff, client: RegisteredClient, webhook: dict[str, Any]
) -> list[dict[str, Any]]:
    resp = api.get(
        f"/api/v1/oauth-clients/{client.id}/webhooks/{webhook['id']}/deliveries",
        headers=staff.headers,
    )
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


def win_a_voucher(api: httpx.Client, operator: Staff, org_id: int, member: Member) -> int:
    only_prize = [{"name": "十元券", "kind": "voucher", "weight": 1, "stock": 1, "value": 1000}]
    activity = create_activity(
        api, operator.headers, org_id, config=lottery_config(only_prize, free_draws_per_day=1)
    )
    drawn = api.post(
        f"/api/v1/activities/{activity['id']}/draws",
        json={"entropy": "a"},
        headers=member.headers,
    )
    assert drawn.json()["won"], drawn.text
    return int(activity["id"])


def test_a_client_receives_its_subtrees_events_signed_as_standard_webhooks(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    city_developer: Staff,
    register_client: ClientFactory,
) -> None:
    client = register_client()
    with running_receiver() as receiver:
        webhook = add_webhook(api, city_developer, client, receiver.url)
        secret = webhook["secret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
        member = create_member(tree.grassroots_a1x, name="李秀英")
        operator = make_staff(tree.city_a, Role.OPERATOR)
        activity_id = win_a_voucher(api, operator, tree.district_a1, member)
        with unit_of_work() as session:
            voucher = session.scalars(
                select(Voucher).where(Voucher.membership_id == member.membership_id)
            ).one()
            benefits.redeem_voucher(
                session, voucher=voucher, order_cents=5000, source="till", details={}
            )
            voucher_id, voucher_code = voucher.id, voucher.code
        assert tasks.run_due() == 4
    got = {r.json["type"]: r for r in receiver.requests}
    assert sorted(got) == ["activity.published", "member.verified", "prize.won", "voucher.used"]
    sub = pairwise_subject(client.client_id, member.user_id)
    for request in receiver.requests:
        # As a receiver would: signature and timestamp, by the reference library.
        assert Webhook(secret).verify(request.body, request.headers) == request.json
        assert request.headers["webhook-id"].startswith("msg_")
        assert abs(int(request.headers["webhook-timestamp"]) - clock.now().timestamp()) < 60
        # Nothing that names the person, nor an internal id of theirs.
        for leaked in ("李秀英", "user_id", "membership_id", "phone", voucher_code):
            assert leaked not in request.body.decode()
    verified = got["member.verified"].json["data"]
    assert sorted(verified) == ["org", "sub", "via"]
    assert (verified["sub"], verified["via"]) == (sub, "roster")
    assert sorted(verified["org"]) == ["code", "name"]
    assert got["prize.won"].json["data"]["sub"] == sub
    assert got["prize.won"].json["data"]["activity_id"] == activity_id
    assert got["prize.won"].json["data"]["prize"]["name"] == "十元券"
    published = got["activity.published"].json["data"]
    assert published["activity_id"] == activity_id
    assert published["starts_at"].endswith("+00:00")
    assert "T" in published["starts_at"]
    assert "sub" not in got["activity.published"].json["data"]
    used = got["voucher.used"].json["data"]
    assert (used["sub"], used["voucher_id"], used["value_cents"]) == (sub, voucher_id, 1000)
    assert "code" not in used
    log = delivery_log(api, city_developer, client, webhook)
    assert [(d["event"], d["status"], d["attempts"]) for d in reversed(log)] == [
        ("member.verified", "delivered", 1),
        ("activity.published", "delivered", 1),
        ("prize.won", "delivered", 1),
        ("voucher.used", "delivered", 1),
    ]
    assert {d["webhook_id"] for d in log} == {r.headers["webhook-id"] for r in receiver.requests}


def test_the_secret_is_shown_once_and_a_rotated_one_signs_what_follows(
    api: httpx.Client, tree: Tree, city_developer: Staff, register_client: ClientFactory
) -> None:
    client = register_client()
    with running_receiver() as receiver:
        webhook = add_webhook(api, city_developer, client, receiver.url, ["member.verified"])
        base = f"/api/v1/oauth-clients/{client.id}/webhooks"
        listed = api.get(base, headers=city_developer.headers).json()
        assert [w["id"] for w in listed] == [webhook["id"]]
        assert "secret" not in listed[0]
        rotated = api.post(f"{base}/{webhook['id']}/secret/rotate", headers=city_developer.headers)
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != webhook["secret"]
        create_member(tree.grassroots_a1x)
        assert tasks.run_due() == 1
    [request] = receiver.requests
    assert verify(new_secret, request)
    assert not verify(webhook["secret"], request)
    with unit_of_work(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.subject_type == "oauth_webhook")
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["openplatform.webhook.create", "openplatform.webhook.rotate_secret"]


def test_retries_keep_the_webhook_id_then_dead_letter_and_redeliver(
    api: httpx.Client, tree: Tree, city_developer: Staff, register_client: ClientFactory
) -> None:
    client = register_client()
    with running_receiver(script=[500, 503, 502]) as receiver:
        webhook = add_webhook(
            api, city_developer, client, receiver.url, ["member.verified"], max_attempts=3
        )
        create_member(tree.grassroots_a1x)
        assert tasks.run_due() == 1
        assert tasks.run_due() == 0  # not due again until its backoff has passed
        for _ in range(2):
            clock.advance(timedelta(minutes=1))
            assert tasks.run_due() == 1
        clock.advance(timedelta(minutes=10))
        assert tasks.run_due() == 0
        [dead] = delivery_log(api, city_developer, client, webhook)
        assert (dead["status"], dead["attempts"]) == ("dead", 3)
        assert dead["last_error"] == "HTTP 502: "
        base = f"/api/v1/oauth-clients/{client.id}/webhooks/{webhook['id']}/deliveries"
        detail = api.get(f"{base}/{dead['id']}", headers=city_developer.headers).json()
        assert [(a["ok"], a["status_code"]) for a in detail["attempt_log"]] == [
            (False, 500),
            (False, 503),
            (False, 502),
        ]
        resp = api.post(f"{base}/{dead['id']}/redeliver", headers=city_developer.headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "pending"
        assert tasks.run_due() == 1
    assert [r.status for r in receiver.requests] == [500, 503, 502, 200]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {dead["webhook_id"]}
    assert all(verify(webhook["secret"], r) for r in receiver.requests)
    [row] = delivery_log(api, city_developer, client, webhook)
    assert (row["status"], row["attempts"]) == ("delivered", 1)


def second_district(tree: Tree) -> int:
    """越秀区, beside 天河区 (the tree's district A1) under the same city."""
    with unit_of_work() as session:
        org = orgs.create_org(
            session,
            actor=SYSTEM,
            code="GZ-YX",
            name="越秀区总工会",
            level=OrgLevel.DISTRICT,
            parent_id=tree.city_a,
        )
        return org.id


def test_a_district_client_never_receives_another_districts_events(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, register_client: ClientFactory
) -> None:
    a2 = second_district(tree)
    a1_dev = make_staff(tree.district_a1, Role.DEVELOPER)
    a2_dev = make_staff(a2, Role.DEVELOPER)
    a1_client = register_client(org_id=tree.district_a1, staff=a1_dev)
    a2_client = register_client(org_id=a2, staff=a2_dev)
    with running_receiver() as a1_receiver, running_receiver() as a2_receiver:
        add_webhook(api, a1_dev, a1_client, a1_receiver.url)
        add_webhook(api, a2_dev, a2_client, a2_receiver.url)
        in_a2 = create_member(a2)
        in_a1 = create_member(tree.grassroots_a1x)
        create_member(tree.city_a)  # above both districts: neither client hears of it
        create_member(tree.grassroots_b1)  # another city
        assert tasks.run_due() == 2
    [to_a1] = a1_receiver.requests
    [to_a2] = a2_receiver.requests
    assert to_a1.json["data"]["sub"] == pairwise_subject(a1_client.client_id, in_a1.user_id)
    assert to_a1.json["data"]["org"]["code"] == "GZ-TH-01"
    assert to_a2.json["data"]["sub"] == pairwise_subject(a2_client.client_id, in_a2.user_id)
    assert to_a2.json["data"]["org"]["code"] == "GZ-YX"
    # The same member is a different subject to each client.
    assert pairwise_subject(a1_client.client_id, in_a2.user_id) != to_a2.json["data"]["sub"]
    # Nor can one district's developer see or add to the other district's client's endpoints.
    other = f"/api/v1/oauth-clients/{a2_client.id}/webhooks"
    assert api.get(other, headers=a1_dev.headers).status_code == 404
    refused = api.post(
        other,
        json={"url": "https://a1.example.com/hook", "events": ALL_EVENTS},
        headers=a1_dev.headers,
    )
    assert refused.status_code == 404
    assert len(api.get(other, headers=a2_dev.headers).json()) == 1


def test_a_disabled_endpoint_or_client_gets_nothing(
    api: httpx.Client, tree: Tree, city_developer: Staff, register_client: ClientFactory
) -> None:
    client = register_client()
    with running_receiver() as receiver:
        off = add_webhook(
            api, city_developer, client, receiver.url, ["member.verified"], enabled=False
        )
        on = add_webhook(api, city_developer, client, receiver.url, ["member.verified"])
        create_member(tree.grassroots_a1x)
        # Disabled once its event is stored: the stored delivery is not sent either.
        resp = api.patch(
            f"/api/v1/oauth-clients/{client.id}/webhooks/{on['id']}",
            json={"enabled": False},
            headers=city_developer.headers,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["enabled"] is False
        tasks.run_due()
        create_member(tree.grassroots_a1x)
        assert tasks.run_due() == 0
        api.patch(
            f"/api/v1/oauth-clients/{client.id}/webhooks/{on['id']}",
            json={"enabled": True},
            headers=city_developer.headers,
        )
        api.patch(
            f"/api/v1/oauth-clients/{client.id}",
            json={"disabled": True},
            headers=city_developer.headers,
        )
        create_member(tree.grassroots_a1x)
        assert tasks.run_due() == 0
    assert receiver.requests == []
    assert delivery_log(api, city_developer, client, off) == []
    [stopped] = delivery_log(api, city_developer, client, on)
    assert (stopped["status"], stopped["last_error"]) == ("dead", "the endpoint is disabled")


def test_events_no_endpoint_listens_to_read_no_endpoint_until_one_is_added(
    api: httpx.Client, tree: Tree, city_developer: Staff, register_client: ClientFactory
) -> None:
    """The usual case, met by every batch of draws: no endpoint over the org. The answer is
    held per process, so a transaction's event reads no endpoint; an endpoint added drops
    it, and the next event is told to the endpoint."""
    client = register_client()
    create_member(tree.grassroots_a1x)  # the answer "none" is now held
    with statements() as seen:
        create_member(tree.grassroots_a1x)
    assert seen, "the member was written"
    assert not [s for s in seen if "openplatform_webhook_endpoint" in s]
    with running_receiver() as receiver:
        add_webhook(api, city_developer, client, receiver.url, ["member.verified"])
        create_member(tree.grassroots_a1x)
        tasks.run_due()
    assert len(receiver.requests) == 1


def test_a_deleted_endpoint_is_gone_from_the_list_and_gets_nothing(
    api: httpx.Client, tree: Tree, city_developer: Staff, register_client: ClientFactory
) -> None:
    client = register_client()
    with running_receiver() as receiver:
        webhook = add_webhook(api, city_developer, client, receiver.url, ["member.verified"])
        url = f"/api/v1/oauth-clients/{client.id}/webhooks/{webhook['id']}"
        assert api.delete(url, headers=city_developer.headers).status_code == 204
        assert api.get(url, headers=city_developer.headers).status_code == 404
        create_member(tree.grassroots_a1x)
        assert tasks.run_due() == 0
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": "http://crm.example.com/hook"}, "url", "an https:// URL"),
        # Plain http only to a network the operator allows (loopback here), not to the world.
        ({"url": "http://8.8.8.8/hook"}, "url", "an https:// URL"),
        ({"url": "ftp://crm.example.com/hook"}, "url", "an http:// or https:// URL"),
        ({"url": "https://10.0.0.1/hook"}, "url", "10.0.0.1 is not a public address"),
        ({"url": "https://a:b@crm.example.com/"}, "url", "a URL without user name or password"),
        ({"events": ["member.deleted"]}, "events.0", None),
        ({"events": []}, "events", "choose at least one event"),
    ],
)
def test_bad_input_is_refused_in_the_one_envelope_and_nothing_is_written(
    api: httpx.Client,
    city_developer: Staff,
    register_client: ClientFactory,
    body: dict[str, Any],
    field: str,
    message: str | None,
) -> None:
    client = register_client()
    base = f"/api/v1/oauth-clients/{client.id}/webhooks"
    resp = api.post(
        base,
        json={"url": "https://crm.example.com/hook", "events": ["prize.won"], **body},
        headers=city_developer.headers,
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "openplatform.bad_webhook"
    [detail] = error["details"]
    assert (detail["field"], detail["code"]) == (field, "openplatform.bad_webhook")
    if message:
        assert detail["message"] == message
    assert api.get(base, headers=city_developer.headers).json() == []


def test_a_receiver_url_on_a_public_name_is_accepted_and_checked_again_when_sent(
    api: httpx.Client, city_developer: Staff, register_client: ClientFactory
) -> None:
    client = register_client()
    created = add_webhook(api, city_developer, client, "https://crm.example.com/hook")
    assert (created["url"], created["enabled"], created["max_attempts"]) == (
        "https://crm.example.com/hook",
        True,
        8,
    )
    assert created["events"] == sorted(ALL_EVENTS)

"""App copy carries functions and triggers (as configuration), never their secrets,
invocation logs or deliveries."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from gonghui.baas.triggers.models import Delivery
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.baas.conftest import AppHandle
from tests.baas.devapp import deploy, functions_url, invoke, make_app
from tests.fixtures import StaffFactory, Tree


def test_a_copy_has_the_functions_and_triggers_but_no_secrets_logs_or_deliveries(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    dev = make_staff(tree.city_a, Role.DEVELOPER)
    source = make_app(api, dev, tree.city_a, "月度活动")
    code = "def handler(event, context):\n    return context.env['LEVEL'] + ':' + str(event)\n"
    deploy(api, source, "greet", code, env={"LEVEL": "city"}, timeout_s=2.0)
    api.put(
        functions_url(source, "/greet/secrets"),
        json={"secrets": {"token": "t0p-s3cret"}},
        headers=dev.headers,
    )
    made = api.post(
        f"/api/v1/baas/apps/{source.id}/triggers",
        json={
            "name": "crm",
            "event": "record.created",
            "table_name": "scores",
            "filter": {"points": {"gte": 10}},
            "target_kind": "webhook",
            "webhook_url": "http://crm.example/hook",
        },
        headers=dev.headers,
    ).json()
    assert invoke(api, source, "greet", 1).status_code == 200
    api.post(
        "/api/v1/baas/data/scores/records",
        json={"member": "m", "points": 20},
        headers=source.server,
    )

    resp = api.post(
        f"/api/v1/baas/apps/{source.id}/copy",
        json={"org_id": tree.grassroots_a1x, "name": "基层活动"},
        headers=dev.headers,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    copy = AppHandle(body["id"], body["org_id"], body["client_key"], body["server_key"], dev)

    [fn] = api.get(functions_url(copy), headers=dev.headers).json()
    assert (fn["name"], fn["env"], fn["timeout_s"], fn["secret_names"]) == (
        "greet",
        {"LEVEL": "city"},
        2.0,
        [],
    )
    assert invoke(api, copy, "greet", 2).json()["result"] == "city:2"
    assert (
        api.get(functions_url(copy, "/greet/invocations"), headers=dev.headers).json()[0]["result"]
        == "city:2"
    )  # only the copy's own call

    [trigger] = api.get(f"/api/v1/baas/apps/{copy.id}/triggers", headers=dev.headers).json()
    assert (trigger["event"], trigger["filter"], trigger["webhook_url"]) == (
        "record.created",
        {"points": {"gte": 10}},
        "http://crm.example/hook",
    )
    template = api.get(f"/api/v1/baas/apps/{copy.id}/template", headers=dev.headers).text
    assert "t0p-s3cret" not in template
    assert str(made["secret"]) not in template
    with unit_of_work(read_only=True) as session:
        copied = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.app_id == copy.id)
        )
    assert copied == 0
    assert len(api.get(functions_url(copy, "/greet/invocations"), headers=dev.headers).json()) == 1

"""Functions over HTTP: a developer deploys, versions, rolls back and sets secrets; an app
caller invokes; every invocation is logged; platform calls stay inside the app."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from gonghui import clock, housekeeping
from gonghui.baas.functions.invoke import flush_logs
from gonghui.orgs.models import Role
from tests.baas.conftest import AppHandle
from tests.baas.devapp import deploy, functions_url, invoke, make_app
from tests.fixtures import StaffFactory, Tree

SCORE = """
def handler(event, context):
    context.log.info("scoring " + str(event["member"]))
    record = context.table("scores").create({"member": event["member"], "points": event["points"]})
    total = context.table("scores").query({"member": {"eq": event["member"]}})
    return {"id": record["id"], "total": sum(r["points"] for r in total["items"])}
"""


@pytest.fixture
def app_a(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    return make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "活动积分")


def test_a_deployed_function_writes_to_its_apps_table_and_is_logged(
    api: httpx.Client, app_a: AppHandle
) -> None:
    assert deploy(api, app_a, "score", SCORE).status_code == 201
    first = invoke(api, app_a, "score", {"member": "m1", "points": 5})
    second = invoke(api, app_a, "score", {"member": "m1", "points": 7})
    assert first.status_code == 200, first.text
    assert first.json()["result"] == {"id": 1, "total": 5}
    assert second.json()["result"] == {"id": 2, "total": 12}
    rows = api.get("/api/v1/baas/data/scores/records", headers=app_a.client).json()["items"]
    assert [(r["member"], r["points"]) for r in rows] == [("m1", 5), ("m1", 7)]
    log = api.get(functions_url(app_a, "/score/invocations"), headers=app_a.dev.headers).json()
    assert [(i["status"], i["result"]) for i in log] == [
        ("ok", {"id": 2, "total": 12}),
        ("ok", {"id": 1, "total": 5}),
    ]
    assert log[1]["logs"] == "[info] scoring m1\n"
    assert all(i["duration_ms"] > 0 and i["peak_memory_kb"] > 0 for i in log)


def test_versions_roll_back_and_invalid_code_is_refused(
    api: httpx.Client, app_a: AppHandle
) -> None:
    deploy(api, app_a, "hello", "def handler(event, context):\n    return 'v1'\n")
    deploy(api, app_a, "hello", "def handler(event, context):\n    return 'v2'\n")
    assert invoke(api, app_a, "hello", None).json()["result"] == "v2"
    resp = api.post(
        functions_url(app_a, "/hello/rollback"), json={"version": 1}, headers=app_a.dev.headers
    )
    assert resp.json()["current_version"] == 1
    assert invoke(api, app_a, "hello", None).json()["result"] == "v1"
    detail = api.get(functions_url(app_a, "/hello"), headers=app_a.dev.headers).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]

    bad = deploy(api, app_a, "hello", "def handler(event):\n    return 1\n")
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "source"
    broken = deploy(api, app_a, "hello", "def handler(event, context) return 1")
    assert broken.json()["error"]["code"] == "functions.bad_source"
    after = api.get(functions_url(app_a, "/hello"), headers=app_a.dev.headers).json()
    assert len(after["versions"]) == 2


def test_secrets_reach_the_function_but_never_an_api_response(
    api: httpx.Client, app_a: AppHandle
) -> None:
    deploy(
        api,
        app_a,
        "notify",
        "def handler(event, context):\n    return len(context.secrets['sms_token'])\n",
        env={"REGION": "gd"},
    )
    resp = api.put(
        functions_url(app_a, "/notify/secrets"),
        json={"secrets": {"sms_token": "s3cr3t-value"}},
        headers=app_a.dev.headers,
    )
    assert resp.json()["secret_names"] == ["sms_token"]
    assert "s3cr3t-value" not in resp.text
    assert invoke(api, app_a, "notify", None).json()["result"] == len("s3cr3t-value")
    detail = api.get(functions_url(app_a, "/notify"), headers=app_a.dev.headers)
    assert "s3cr3t-value" not in detail.text
    assert detail.json()["env"] == {"REGION": "gd"}


def test_a_failing_function_answers_502_with_its_log_and_a_timeout_504(
    api: httpx.Client, app_a: AppHandle
) -> None:
    deploy(
        api,
        app_a,
        "boom",
        "def handler(event, context):\n"
        "    print('about to fail')\n"
        "    raise ValueError('bad event')\n",
    )
    resp = invoke(api, app_a, "boom", {})
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert (error["code"], error["message"]) == ("functions.failed", "ValueError: bad event")
    assert "about to fail" in error["details"]["logs"]
    deploy(
        api,
        app_a,
        "slow",
        "import time\ndef handler(event, context):\n    time.sleep(30)\n",
        timeout_s=0.5,
    )
    slow = invoke(api, app_a, "slow", {})
    assert slow.status_code == 504
    assert slow.json()["error"]["code"] == "functions.timeout"
    statuses = api.get(functions_url(app_a, "/slow/invocations"), headers=app_a.dev.headers).json()
    assert [i["status"] for i in statuses] == ["timeout"]


def test_a_function_cannot_reach_another_apps_tables_or_functions(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, app_a: AppHandle
) -> None:
    app_b = make_app(api, make_staff(tree.city_b, Role.DEVELOPER), tree.city_b, "深圳应用")
    api.post(
        "/api/v1/baas/data/scores/records",
        json={"member": "b-secret", "points": 99},
        headers={"X-Gonghui-App-Key": app_b.server_key},
    )
    deploy(api, app_b, "private", "def handler(event, context):\n    return 'b only'\n")
    deploy(
        api,
        app_a,
        "snoop",
        "def handler(event, context):\n"
        "    rows = context.table('scores').query({'member': {'eq': 'b-secret'}})['items']\n"
        "    try:\n"
        "        other = context.sdk.invoke('private')\n"
        "    except Exception as exc:\n"
        "        other = type(exc).__name__ + ' ' + str(exc)\n"
        "    return {'rows': rows, 'other': other}\n",
    )
    result = invoke(api, app_a, "snoop", None).json()["result"]
    assert result["rows"] == []
    assert result["other"].startswith("PlatformError functions.not_found")
    # Nor can app A's key invoke app B's function by naming app B in the URL.
    crossed = api.post(functions_url(app_b, "/private/invoke"), json=None, headers=app_a.client)
    assert crossed.status_code == 404


def test_a_function_running_with_caller_rights_is_held_to_the_table_rules(
    api: httpx.Client, app_a: AppHandle
) -> None:
    api.put(
        f"/api/v1/baas/apps/{app_a.id}/tables/scores/permissions",
        json={"permissions": {"read": ["public"], "create": ["staff:admin"]}},
        headers=app_a.dev.headers,
    )
    source = (
        "def handler(event, context):\n"
        "    return context.table('scores').create({'member': 'x', 'points': 1})\n"
    )
    deploy(api, app_a, "as-caller", source)
    deploy(api, app_a, "as-server", source, runs_as="server")
    refused = invoke(api, app_a, "as-caller", None)
    assert refused.status_code == 502
    assert refused.json()["error"]["message"].startswith("baas.")
    assert invoke(api, app_a, "as-server", None).json()["result"]["member"] == "x"
    rows = api.get("/api/v1/baas/data/scores/records", headers=app_a.client).json()["items"]
    assert len(rows) == 1


def test_developers_of_another_city_see_nothing(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, app_a: AppHandle
) -> None:
    deploy(api, app_a, "hello", "def handler(event, context):\n    return 1\n")
    dev_b = make_staff(tree.city_b, Role.DEVELOPER)
    assert api.get(functions_url(app_a, "/hello"), headers=dev_b.headers).status_code == 404
    resp = api.put(
        functions_url(app_a, "/hello"),
        json={"source": "def handler(event, context):\n    return 2\n"},
        headers=dev_b.headers,
    )
    assert resp.status_code == 404
    assert invoke(api, app_a, "hello", None).json()["result"] == 1


def test_invocation_logs_are_kept_for_the_retention_period(
    api: httpx.Client, app_a: AppHandle
) -> None:
    deploy(api, app_a, "hello", "def handler(event, context):\n    return event\n")
    invoke(api, app_a, "hello", 1)
    clock.advance(timedelta(days=10))
    invoke(api, app_a, "hello", 2)
    flush_logs()
    clock.advance(timedelta(days=5))
    assert housekeeping.run()["function_logs"] == 1  # 15 days old, past the 14-day default
    clock.reset()
    log = api.get(functions_url(app_a, "/hello/invocations"), headers=app_a.dev.headers).json()
    assert [i["result"] for i in log] == [2]

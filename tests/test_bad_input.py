"""Bad input answers a clear 4xx in the envelope, naming the field, and writes nothing.

Each case here is an input the property-based fuzzer (``test_api_fuzz.py``) once answered with
``500 internal``: integers beyond 64 bits, text a database cannot store, malformed multipart.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.activities.models import Activity
from gonghui.activities.quiz.models import Question
from gonghui.baas.models import App
from gonghui.db import unit_of_work
from gonghui.types import MAX_AMOUNT
from tests.activities.conftest import create_activity
from tests.fixtures import Staff, StaffFactory, Tree

HUGE = 1596945191725555253248  # beyond 2**63 - 1: no 64-bit column holds it


def _count(model: type[Any]) -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _raw_json(
    api: httpx.Client, method: str, url: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """Send ``body`` as JSON with non-ASCII escaped, as a client may send a lone surrogate."""
    content = json.dumps(body)  # ensure_ascii: "\ud800" travels as its escape
    return api.request(
        method, url, content=content, headers={**headers, "Content-Type": "application/json"}
    )


def _assert_invalid(resp: httpx.Response, field: str) -> None:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "request.invalid"
    assert field in [d["field"] for d in error["details"]], error["details"]


@pytest.fixture
def admin(tree: Tree, make_staff: StaffFactory) -> Staff:
    return make_staff(tree.province)


@pytest.fixture
def app_id(api: httpx.Client, tree: Tree, admin: Staff) -> int:
    resp = api.post(
        "/api/v1/baas/apps",
        json={"org_id": tree.province, "name": "welfare", "settings": {}},
        headers=admin.headers,
    )
    assert resp.status_code == 201, resp.text
    app_id: int = resp.json()["id"]
    resp = api.post(
        f"/api/v1/baas/apps/{app_id}/tables",
        json={"name": "notes", "fields": [{"name": "title", "type": "text"}], "permissions": {}},
        headers=admin.headers,
    )
    assert resp.status_code == 201, resp.text
    return app_id


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"/api/v1/baas/apps/{HUGE}", "app_id"),
        ("/api/v1/orgs/124466081683289810398076731392/roster", "org_id"),
        ("/api/v1/audit?actor_user_id=-2827396388936776214611230720", "actor_user_id"),
        ("/api/v1/public/lotteries/12505975760396763025899520/proof", "activity_id"),
        (f"/api/v1/orgs/{HUGE}/questions", "org_id"),
        (f"/api/v1/baas/apps/1/functions/fn/invocations?before_id={HUGE}", "before_id"),
    ],
)
def test_an_id_beyond_64_bits_is_refused_naming_it(
    api: httpx.Client, admin: Staff, url: str, field: str
) -> None:
    _assert_invalid(api.get(url, headers=admin.headers), field)


def test_tagging_or_resolving_ids_beyond_64_bits_is_refused_naming_them(
    api: httpx.Client, admin: Staff
) -> None:
    # Found by the OpenAPI fuzzer on the routes added with member tags and verification flags.
    tags = api.put(f"/api/v1/roster/{HUGE}/tags", json={"tags": []}, headers=admin.headers)
    _assert_invalid(tags, "entry_id")
    resolved = api.post(f"/api/v1/members/verification-flags/{HUGE}/resolve", headers=admin.headers)
    _assert_invalid(resolved, "flag_id")


def test_a_budget_beyond_any_real_sum_is_refused_and_the_activity_keeps_its_budget(
    api: httpx.Client, tree: Tree, admin: Staff
) -> None:
    activity = create_activity(api, admin.headers, tree.province, publish=False, budget_cents=500)
    resp = api.patch(
        f"/api/v1/activities/{activity['id']}",
        json={"budget_cents": 51704779012935498074161152},
        headers=admin.headers,
    )
    _assert_invalid(resp, "budget_cents")
    resp = api.get(f"/api/v1/activities/{activity['id']}", headers=admin.headers)
    assert resp.json()["budget_cents"] == 500


def test_the_largest_amount_accepted_is_stored_and_read_back(
    api: httpx.Client, tree: Tree, admin: Staff
) -> None:
    """``types.Amount``'s maximum is past a 32-bit column: it must still be stored whole."""
    activity = create_activity(api, admin.headers, tree.province, publish=False, budget_cents=500)
    resp = api.patch(
        f"/api/v1/activities/{activity['id']}",
        json={"budget_cents": MAX_AMOUNT, "budget_points": MAX_AMOUNT},
        headers=admin.headers,
    )
    assert resp.status_code == 200, resp.text
    resp = api.get(f"/api/v1/activities/{activity['id']}", headers=admin.headers)
    assert (resp.json()["budget_cents"], resp.json()["budget_points"]) == (MAX_AMOUNT, MAX_AMOUNT)


def test_an_incoming_webhook_for_an_id_beyond_64_bits_is_refused_without_credentials(
    api: httpx.Client,
) -> None:
    resp = api.post(f"/api/v1/baas/incoming/{HUGE}", content=b"{}")
    _assert_invalid(resp, "trigger_id")


_LOTTERY = {"kind": "lottery", "lottery": {"prizes": [{"name": "谢谢", "kind": "none"}]}}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "nul\x00"}, "title"),
        ({"title": "\ud800"}, "title"),
        ({"config": {**_LOTTERY, "kind": "lottery\udfff"}}, "config.kind"),
        ({"eligibility": {"tags_any": ["a\x00"]}}, "eligibility.tags_any.0"),
    ],
    ids=["nul-title", "surrogate-title", "surrogate-kind", "nul-tag"],
)
def test_an_activity_with_text_no_database_can_store_is_refused(
    api: httpx.Client, tree: Tree, admin: Staff, changes: dict[str, Any], field: str
) -> None:
    body = {
        "org_id": tree.province,
        "title": "十二月抽奖",
        "starts_at": "2026-12-01T00:00:00+08:00",
        "ends_at": "2026-12-31T00:00:00+08:00",
        "config": _LOTTERY,
        **changes,
    }
    _assert_invalid(_raw_json(api, "POST", "/api/v1/activities", body, admin.headers), field)
    assert _count(Activity) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "name": "t2",
                "fields": [{"name": "x", "type": "text", "rules": {"pattern": "\ud800"}}],
            },
            "fields.0.rules.pattern",
        ),
        ({"name": "t2", "fields": [], "permissions": {"read": ["\ud83d"]}}, "permissions.read.0"),
        ({"name": "t2", "fields": [], "permissions": {"read": ["any\x00"]}}, "permissions.read.0"),
    ],
    ids=["surrogate-rule", "surrogate-permission", "nul-permission"],
)
def test_a_table_defined_with_unstorable_text_is_refused(
    api: httpx.Client, admin: Staff, app_id: int, body: dict[str, Any], field: str
) -> None:
    url = f"/api/v1/baas/apps/{app_id}/tables"
    _assert_invalid(_raw_json(api, "POST", url, body, admin.headers), field)
    names = [t["name"] for t in api.get(url, headers=admin.headers).json()]
    assert names == ["notes"]


def test_table_permissions_with_unstorable_text_are_refused_and_kept(
    api: httpx.Client, admin: Staff, app_id: int
) -> None:
    url = f"/api/v1/baas/apps/{app_id}/tables/notes"
    before = api.get(url, headers=admin.headers).json()["permissions"]
    body = {"permissions": {"read": ["anyone\udbff"]}}
    resp = _raw_json(api, "PUT", f"{url}/permissions", body, admin.headers)
    _assert_invalid(resp, "permissions.read.0")
    assert api.get(url, headers=admin.headers).json()["permissions"] == before


def test_an_app_copied_under_an_unstorable_name_is_refused(
    api: httpx.Client, tree: Tree, admin: Staff, app_id: int
) -> None:
    body = {"org_id": tree.province, "name": "copy\x00"}
    resp = _raw_json(api, "POST", f"/api/v1/baas/apps/{app_id}/copy", body, admin.headers)
    _assert_invalid(resp, "name")
    assert _count(App) == 1


def test_a_key_with_unstorable_text_names_the_object_holding_it(
    api: httpx.Client, admin: Staff, app_id: int
) -> None:
    body = {"settings": {"theme": {"\ud800": "red"}}}
    resp = _raw_json(api, "PATCH", f"/api/v1/baas/apps/{app_id}", body, admin.headers)
    _assert_invalid(resp, "settings.theme")


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/orgs/1/questions?tag=a%00b", "tag"),
        ("/api/v1/baas/apps/1/tables/no%00tes", "name"),
    ],
    ids=["query", "path"],
)
def test_a_nul_in_a_query_or_path_is_refused_naming_it(
    api: httpx.Client, admin: Staff, app_id: int, url: str, field: str
) -> None:
    _assert_invalid(api.get(url, headers=admin.headers), field)


def test_a_question_upload_to_an_org_id_beyond_64_bits_is_refused(
    api: httpx.Client, admin: Staff
) -> None:
    files = {"file": ("questions.xlsx", b"PK\x03\x04 not a workbook", "application/octet-stream")}
    resp = api.post(f"/api/v1/orgs/{HUGE}/questions/import", files=files, headers=admin.headers)
    _assert_invalid(resp, "org_id")
    assert _count(Question) == 0


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=file\r\n\r\nab"),
        ("multipart/form-data; boundary=x", b"--x\r\nno headers at all\r\n--x--\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n"),
        ("multipart/form-data; boundary=x", b"garbage"),
    ],
    ids=["no-boundary", "no-part-headers", "no-end", "no-parts"],
)
def test_a_malformed_question_upload_is_refused_and_imports_nothing(
    api: httpx.Client, tree: Tree, admin: Staff, content_type: str, content: bytes
) -> None:
    resp = api.post(
        f"/api/v1/orgs/{tree.province}/questions/import",
        content=content,
        headers={**admin.headers, "Content-Type": content_type},
    )
    assert resp.status_code in (400, 422), resp.text
    assert resp.json()["error"]["code"] in ("request.bad", "request.invalid")
    assert _count(Question) == 0

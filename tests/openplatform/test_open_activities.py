"""``activities:write``: a union's app runs its org's activities once a staff member who manages
activities approved, through the same rules as the console; ``activities:read`` reads each
one's participation and results. Never another subtree's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.activities.models import Activity
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import (
    add_questions,
    answers_for,
    create_activity,
    create_member,
    draw,
    lottery_config,
    quiz_config,
    window,
)
from tests.fixtures import Staff, StaffFactory, Tree
from tests.openplatform.conftest import (
    ClientFactory,
    RegisteredClient,
    approve,
    bearer,
    client_token,
    on_roster,
)

WRITE = "activities:write"


@pytest.fixture
def activities_app(register_client: ClientFactory) -> RegisteredClient:
    return register_client(scope=f"openid activities:read {WRITE}")


def _body(org_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "title": "开放平台抽奖",
        "config": lottery_config(
            prizes=[{"name": "十元券", "kind": "voucher", "weight": 1, "stock": 5, "value": 1000}]
        ),
        **window(),
        **fields,
    }


def assert_not_found_through_every_route(
    server: str, headers: dict[str, str], activity: dict[str, Any]
) -> None:
    """Every route about one activity answers as if it did not exist, and changes nothing."""
    url = f"{server}/open/v1/activities/{activity['id']}"
    for method, path in (
        ("POST", "publish"),
        ("POST", "pause"),
        ("POST", "resume"),
        ("GET", "participation"),
        ("GET", "results"),
    ):
        answer = httpx.request(method, f"{url}/{path}", headers=headers)
        assert answer.status_code == 404, (activity["title"], path)
        assert answer.json()["error"]["code"] == "activity.not_found"


def _activities() -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Activity)) or 0)


def test_an_app_creates_publishes_and_pauses_activities_once_staff_who_manage_them_approved(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    city_developer: Staff, activities_app: RegisteredClient,
) -> None:  # fmt: skip
    assert client_token(server, activities_app, WRITE).json()["error"] == "invalid_scope"
    lacking = approve(api, city_developer, activities_app, WRITE)  # apps.manage only
    assert lacking.status_code == 403
    operator = make_staff(tree.city_a, Role.OPERATOR)
    assert approve(api, operator, activities_app, WRITE).status_code == 204
    headers = bearer(client_token(server, activities_app, f"activities:read {WRITE}"))

    created = httpx.post(
        f"{server}/open/v1/activities", json=_body(tree.grassroots_a1x), headers=headers
    )
    assert created.status_code == 201, created.text
    activity = created.json()
    assert (activity["status"], activity["org_code"]) == ("draft", "GZ-TH-01")
    listed = httpx.get(f"{server}/open/v1/activities", headers=headers).json()["items"]
    assert activity["id"] not in [a["id"] for a in listed]  # drafts are not read
    with unit_of_work(read_only=True) as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "activities.create",
                AuditEntry.subject_id == str(activity["id"]),
            )
        ).one()
        assert entry.actor_user_id == operator.user_id  # in its approver's name
        assert entry.details is not None
        assert entry.details["client_id"] == activities_app.client_id

    url = f"{server}/open/v1/activities/{activity['id']}"
    published = httpx.post(f"{url}/publish", headers=headers)
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "live"
    assert httpx.post(f"{url}/pause", headers=headers).json()["status"] == "paused"
    twice = httpx.post(f"{url}/pause", headers=headers)
    assert twice.status_code == 409  # the activities' own rule
    assert twice.json()["error"]["code"] == "activities.bad_state"
    assert httpx.post(f"{url}/resume", headers=headers).json()["status"] == "live"

    # Withdrawn: the same token can no longer write, and still reads.
    gone = api.delete(
        f"/api/v1/oauth-clients/{activities_app.id}/approvals/{WRITE}", headers=operator.headers
    )
    assert gone.status_code == 204
    refused = httpx.post(f"{url}/pause", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "openplatform.insufficient_scope"
    assert httpx.get(f"{url}/participation", headers=headers).status_code == 200


def test_an_app_touches_no_activity_outside_its_subtree(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    activities_app: RegisteredClient,
) -> None:  # fmt: skip
    admin = make_staff(tree.province).headers
    shenzhen = create_activity(api, admin, tree.grassroots_b1, title="深圳抽奖")
    shenzhen_draft = create_activity(api, admin, tree.city_b, title="深圳草稿", publish=False)
    province = create_activity(api, admin, tree.province, title="全省活动")
    approve(api, make_staff(tree.province, Role.OPERATOR), activities_app, WRITE)
    headers = bearer(client_token(server, activities_app, f"activities:read {WRITE}"))
    before = _activities()

    for org_id in (tree.city_b, tree.grassroots_b1, tree.province):
        outside = httpx.post(f"{server}/open/v1/activities", json=_body(org_id), headers=headers)
        assert outside.status_code == 404, org_id
        assert outside.json()["error"]["code"] == "org.not_found"
    for found in (shenzhen, shenzhen_draft, province):
        assert_not_found_through_every_route(server, headers, found)
    assert _activities() == before
    # Though its approver, at the province, could: the grant is the app's subtree only.


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"org_id": "abc"}, "org_id"),
        ({"config": {"kind": "lottery"}}, "config"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_activity_input_is_refused_in_the_one_envelope_and_nothing_is_created(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    activities_app: RegisteredClient, change: dict[str, Any], field: str,
) -> None:  # fmt: skip
    approve(api, make_staff(tree.city_a, Role.OPERATOR), activities_app, WRITE)
    headers = bearer(client_token(server, activities_app, WRITE))
    before = _activities()
    bad = httpx.post(
        f"{server}/open/v1/activities", json=_body(tree.city_a) | change, headers=headers
    )
    assert bad.status_code == 422, bad.text
    assert field in str(bad.json()["error"]["details"])
    assert _activities() == before
    wrong_way = httpx.post(
        f"{server}/open/v1/activities/1/unpublish", headers=headers
    )  # not a transition
    assert wrong_way.status_code == 422


def test_an_app_reads_a_lotterys_participation_and_prizes_won(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    activities_app: RegisteredClient,
) -> None:  # fmt: skip
    admin = make_staff(tree.city_a).headers
    lottery = create_activity(
        api, admin, tree.grassroots_a1x, config=_body(tree.city_a)["config"], title="天河抽奖"
    )
    draft = create_activity(api, admin, tree.city_a, publish=False)
    for _ in range(2):
        member = create_member(tree.grassroots_a1x)
        assert draw(api, lottery["id"], member.headers).status_code in (200, 201)
    headers = bearer(client_token(server, activities_app, "activities:read"))
    url = f"{server}/open/v1/activities/{lottery['id']}"

    took_part = httpx.get(f"{url}/participation", headers=headers)
    assert took_part.status_code == 200, took_part.text
    assert took_part.json() == {
        "activity_id": lottery["id"],
        "kind": "lottery",
        "status": "live",
        "draws": 2,
        "members_drawing": 2,
        "quiz_attempts": None,
        "quiz_passed": None,
        "votes": None,
    }
    results = httpx.get(f"{url}/results", headers=headers).json()
    assert results["prizes"] == [
        {"position": 0, "name": "十元券", "kind": "voucher", "initial_stock": 5, "won": 2}
    ]
    assert (results["ranking"], results["counts_hidden"]) == ([], False)
    # A draft has neither (as the listing does not show it).
    drafted = httpx.get(f"{server}/open/v1/activities/{draft['id']}/results", headers=headers)
    assert drafted.status_code == 404


def test_an_app_reads_how_a_quizs_attempts_scored(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    activities_app: RegisteredClient,
) -> None:  # fmt: skip
    admin = make_staff(tree.city_a).headers
    add_questions(api, admin, tree.grassroots_a1x)
    quiz = create_activity(api, admin, tree.grassroots_a1x, config=quiz_config(), title="天河答题")
    for wrong in (0, 1, 1):  # 100, 66, 66 (2 of 3 questions)
        member = create_member(tree.grassroots_a1x)
        attempt = api.post(f"/api/v1/activities/{quiz['id']}/quiz/attempts", headers=member.headers)
        assert attempt.status_code in (200, 201), attempt.text
        done = api.post(
            f"/api/v1/quiz/attempts/{attempt.json()['attempt_id']}/submit",
            json={"answers": answers_for(attempt.json(), wrong=wrong)},
            headers=member.headers,
        )
        assert done.status_code == 200, done.text
    started = create_member(tree.grassroots_a1x)  # an attempt not submitted is not scored
    api.post(f"/api/v1/activities/{quiz['id']}/quiz/attempts", headers=started.headers)
    headers = bearer(client_token(server, activities_app, "activities:read"))
    url = f"{server}/open/v1/activities/{quiz['id']}"
    results = httpx.get(f"{url}/results", headers=headers).json()
    assert results["scores"] == [{"score": 66, "attempts": 2}, {"score": 100, "attempts": 1}]
    took_part = httpx.get(f"{url}/participation", headers=headers).json()
    assert (took_part["quiz_attempts"], took_part["quiz_passed"]) == (4, 3)


def test_the_open_api_document_lists_the_activity_routes(server: str) -> None:
    paths = httpx.get(f"{server}/open/v1/openapi.json").json()["paths"]
    assert {
        "/open/v1/activities",
        "/open/v1/activities/{activity_id}/{transition}",
        "/open/v1/activities/{activity_id}/participation",
        "/open/v1/activities/{activity_id}/results",
    } <= set(paths)
    assert "post" in paths["/open/v1/activities"]


def test_a_district_app_reaches_nothing_above_or_beside_its_district_through_any_new_route(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    register_client: ClientFactory,
) -> None:  # fmt: skip

    developer = make_staff(tree.district_a1, Role.DEVELOPER)
    app = register_client(
        org_id=tree.district_a1,
        staff=developer,
        scope=f"activities:read {WRITE} org:members:read org:members:unmask",
    )
    city_admin = make_staff(tree.city_a)  # approves all three, from above the district
    for scope in (WRITE, "org:members:read", "org:members:unmask"):
        assert approve(api, city_admin, app, scope).status_code == 204
    headers = bearer(client_token(server, app, " ".join(app.body["scope"].split())))
    inside, _ = on_roster(tree.grassroots_a1x, "王芳")
    on_roster(tree.city_a, "李建国")
    on_roster(tree.grassroots_b1, "陈深")
    city_activity = create_activity(api, city_admin.headers, tree.city_a, title="广州抽奖")
    other_city = create_activity(
        api, make_staff(tree.city_b).headers, tree.grassroots_b1, title="深圳抽奖"
    )
    own = create_activity(api, city_admin.headers, tree.grassroots_a1x, title="园区抽奖")
    before = _activities()

    roster = httpx.get(
        f"{server}/open/v1/orgs/{tree.district_a1}/members?unmasked=true", headers=headers
    )
    assert [m["id"] for m in roster.json()["items"]] == [inside]
    for org_id in (tree.city_a, tree.city_b, tree.grassroots_b1, tree.province):
        for query in ("", "?unmasked=true"):
            members = httpx.get(f"{server}/open/v1/orgs/{org_id}/members{query}", headers=headers)
            assert members.status_code == 404, (org_id, query)
        create = httpx.post(f"{server}/open/v1/activities", json=_body(org_id), headers=headers)
        assert create.status_code == 404, org_id
    for found in (city_activity, other_city):
        assert_not_found_through_every_route(server, headers, found)
    listed = httpx.get(f"{server}/open/v1/activities", headers=headers).json()["items"]
    assert [a["id"] for a in listed] == [own["id"]]
    assert httpx.get(f"{server}/open/v1/activities/{own['id']}/results", headers=headers).is_success
    assert _activities() == before
    with unit_of_work(read_only=True) as session:
        unmasked = session.scalars(
            select(AuditEntry.subject_id).where(AuditEntry.action == "pii.unmask")
        ).all()
    assert set(unmasked) == {str(inside)}  # only what it could read

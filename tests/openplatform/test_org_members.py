"""``org:members:read``: a union's app reads its roster only once a staff member who may read
it approved, masked unless a staff member who may unmask approved that too (each clear read
audited); never beyond its subtree nor its approver's rights; withdrawn at once."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.openplatform import identity
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.fixtures import Staff, StaffFactory, Tree
from tests.openplatform.conftest import (
    ClientFactory,
    RegisteredClient,
    approve,
    bearer,
    client_token,
    on_roster,
)


def audited(action: str) -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).where(AuditEntry.action == action)) or 0)


MEMBERS = "org:members:read"
UNMASK = "org:members:unmask"


@pytest.fixture
def roster_app(register_client: ClientFactory) -> RegisteredClient:
    """A city A app asking to read its roster, in clear too."""
    return register_client(scope=f"openid activities:read {MEMBERS} {UNMASK}")


def test_a_token_carries_org_members_read_only_once_staff_who_may_read_the_roster_approved(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    city_developer: Staff, roster_app: RegisteredClient,
) -> None:  # fmt: skip
    refused = client_token(server, roster_app, MEMBERS)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    # Asked for by default, it is left out until approved.
    assert client_token(server, roster_app).json()["scope"] == "activities:read"

    # Its developer manages the app but may not read the roster: cannot approve.
    lacking = approve(api, city_developer, roster_app, MEMBERS)
    assert lacking.status_code == 403
    assert lacking.json()["error"]["code"] == "openplatform.approver_lacks_right"
    # Staff of another city do not see the app; staff below its org cannot approve for it.
    assert (
        approve(api, make_staff(tree.city_b, Role.OPERATOR), roster_app, MEMBERS).status_code == 404
    )
    below = approve(api, make_staff(tree.district_a1, Role.OPERATOR), roster_app, MEMBERS)
    assert below.status_code == 404
    assert audited("openplatform.approval.grant") == 0
    assert client_token(server, roster_app, MEMBERS).status_code == 400

    auditor = make_staff(tree.city_a, Role.AUDITOR)  # members.read, no unmask
    assert approve(api, auditor, roster_app, MEMBERS).status_code == 204
    assert audited("openplatform.approval.grant") == 1
    token = client_token(server, roster_app, MEMBERS)
    assert token.json()["scope"] == MEMBERS
    # The unmask approval is another one, of someone who may unmask: the auditor may not.
    no_unmask = approve(api, auditor, roster_app, UNMASK)
    assert no_unmask.status_code == 403
    assert no_unmask.json()["error"]["code"] == "openplatform.approver_lacks_right"
    assert client_token(server, roster_app, f"{MEMBERS} {UNMASK}").json()["error"] == (
        "invalid_scope"
    )
    # A scope the app does not ask for is not approved.
    other = approve(api, make_staff(tree.city_a, Role.OPERATOR), roster_app, "activities:write")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "openplatform.scope_not_asked"

    listed = api.get("/api/v1/oauth-approvals", headers=auditor.headers).json()
    assert [(c["client_id"], [(s["scope"], s["state"]) for s in c["scopes"]]) for c in listed] == [
        (roster_app.client_id, [(MEMBERS, "approved"), (UNMASK, "awaiting")])
    ]


def test_an_app_reads_its_subtrees_roster_masked_and_nothing_of_another_city(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    roster_app: RegisteredClient,
) -> None:  # fmt: skip
    first, first_id = on_roster(tree.grassroots_a1x, "王芳", phone="13800138000")
    second, _ = on_roster(tree.city_a, "李建国")
    on_roster(tree.grassroots_b1, "陈深")  # Shenzhen
    on_roster(tree.province, "省直")  # above the app's org
    assert (
        approve(api, make_staff(tree.city_a, Role.AUDITOR), roster_app, MEMBERS).status_code == 204
    )
    headers = bearer(client_token(server, roster_app, MEMBERS))

    page = httpx.get(f"{server}/open/v1/orgs/{tree.city_a}/members", headers=headers)
    assert page.status_code == 200, page.text
    assert page.headers["ratelimit-limit"] == "6000"
    items = page.json()["items"]
    assert [(m["id"], m["name"], m["phone"], m["org_code"]) for m in items] == [
        (first, "王*", "138****8000", "GZ-TH-01"),
        (second, "李*国", None, "GZ"),
    ]
    assert items[0]["id_number"] == first_id[:6] + "********" + first_id[-4:]
    assert items[0]["sub"] is None  # not verified
    assert audited("pii.unmask") == 0

    one = httpx.get(f"{server}/open/v1/orgs/{tree.city_a}/members?limit=1", headers=headers).json()
    assert [m["id"] for m in one["items"]] == [first]
    rest = httpx.get(
        f"{server}/open/v1/orgs/{tree.city_a}/members?limit=1&cursor={one['next_cursor']}",
        headers=headers,
    ).json()
    assert ([m["id"] for m in rest["items"]], rest["next_cursor"]) == ([second], None)
    district = httpx.get(f"{server}/open/v1/orgs/{tree.district_a1}/members", headers=headers)
    assert [m["id"] for m in district.json()["items"]] == [first]

    # Another city, the province above, an org that does not exist: one answer.
    for org_id in (tree.city_b, tree.grassroots_b1, tree.province, 10**9):
        outside = httpx.get(f"{server}/open/v1/orgs/{org_id}/members", headers=headers)
        assert outside.status_code == 404, org_id
        assert outside.json()["error"]["code"] == "org.not_found"

    # Clear values need the unmask scope.
    clear = httpx.get(f"{server}/open/v1/orgs/{tree.city_a}/members?unmasked=true", headers=headers)
    assert clear.status_code == 403
    assert clear.json()["error"]["code"] == "openplatform.insufficient_scope"
    assert audited("pii.unmask") == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=abc", "cursor"),
        ("unmasked=perhaps", "unmasked"),
    ],
)
def test_bad_input_is_refused_in_the_one_envelope(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    roster_app: RegisteredClient, query: str, field: str,
) -> None:  # fmt: skip
    approve(api, make_staff(tree.city_a, Role.AUDITOR), roster_app, MEMBERS)
    headers = bearer(client_token(server, roster_app, MEMBERS))
    bad = httpx.get(f"{server}/open/v1/orgs/{tree.city_a}/members?{query}", headers=headers)
    assert bad.status_code == 422, bad.text
    error = bad.json()["error"]
    assert error["code"]
    assert field in str(error["details"])
    assert httpx.get(f"{server}/open/v1/orgs/abc/members", headers=headers).status_code == 422


def test_clear_values_need_the_unmask_approval_and_each_read_is_audited(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    roster_app: RegisteredClient,
) -> None:  # fmt: skip
    entry, number = on_roster(tree.grassroots_a1x, "王芳", phone="13800138000")
    with unit_of_work() as session:
        from gonghui.accounts.service import create_user

        user = create_user(session, display_name="王芳")
        members.verify(session, user_id=user.id, name="王芳", id_number=number)
        user_id = user.id
    approve(api, make_staff(tree.city_a, Role.AUDITOR), roster_app, MEMBERS)
    operator = make_staff(tree.city_a, Role.OPERATOR)  # may unmask
    assert approve(api, operator, roster_app, UNMASK).status_code == 204
    headers = bearer(client_token(server, roster_app, f"{MEMBERS} {UNMASK}"))

    masked = httpx.get(f"{server}/open/v1/orgs/{tree.grassroots_a1x}/members", headers=headers)
    assert masked.json()["items"][0]["name"] == "王*"  # masked unless asked
    assert audited("pii.unmask") == 0

    clear = httpx.get(
        f"{server}/open/v1/orgs/{tree.grassroots_a1x}/members?unmasked=true", headers=headers
    )
    assert clear.status_code == 200, clear.text
    (person,) = clear.json()["items"]
    assert (person["id"], person["name"], person["id_number"], person["phone"]) == (
        entry,
        "王芳",
        number,
        "13800138000",
    )
    assert person["sub"] == identity.pairwise_subject(roster_app.client_id, user_id)
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(AuditEntry.actor_user_id, AuditEntry.subject_id, AuditEntry.field)
            .where(AuditEntry.action == "pii.unmask")
            .order_by(AuditEntry.field)
        ).all()
        details = session.scalars(
            select(AuditEntry.details).where(AuditEntry.action == "pii.unmask")
        ).all()
    # Written as a staff member's unmasking is: one row per value, in the approver's name.
    assert [tuple(r) for r in rows] == [
        (operator.user_id, str(entry), "id_number"),
        (operator.user_id, str(entry), "name"),
        (operator.user_id, str(entry), "phone"),
    ]
    assert all(d == {"client_id": roster_app.client_id} for d in details)


def test_withdrawn_the_apps_tokens_lose_the_scope_at_once(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    city_developer: Staff, roster_app: RegisteredClient,
) -> None:  # fmt: skip
    on_roster(tree.city_a, "李建国")
    approve(api, make_staff(tree.city_a, Role.AUDITOR), roster_app, MEMBERS)
    headers = bearer(client_token(server, roster_app, f"activities:read {MEMBERS}"))
    url = f"{server}/open/v1/orgs/{tree.city_a}/members"
    assert httpx.get(url, headers=headers).status_code == 200  # held by the process now

    # The app's own developers may withdraw what staff approved for it.
    gone = api.delete(
        f"/api/v1/oauth-clients/{roster_app.id}/approvals/{MEMBERS}", headers=city_developer.headers
    )
    assert gone.status_code == 204
    assert audited("openplatform.approval.withdraw") == 1
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "openplatform.insufficient_scope"
    # The token keeps its other scopes; a new one cannot have it.
    assert httpx.get(f"{server}/open/v1/activities", headers=headers).status_code == 200
    assert client_token(server, roster_app, MEMBERS).json()["error"] == "invalid_scope"
    again = api.delete(
        f"/api/v1/oauth-clients/{roster_app.id}/approvals/{MEMBERS}", headers=city_developer.headers
    )
    assert again.status_code == 404


def test_an_approval_lapses_the_moment_its_approver_loses_the_right(
    server: str, api: httpx.Client, tree: Tree, make_staff: StaffFactory,
    roster_app: RegisteredClient,
) -> None:  # fmt: skip
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    approve(api, auditor, roster_app, MEMBERS)
    headers = bearer(client_token(server, roster_app, MEMBERS))
    url = f"{server}/open/v1/orgs/{tree.city_a}/members"
    assert httpx.get(url, headers=headers).status_code == 200

    with unit_of_work() as session:
        orgs.revoke_role(
            session, actor=SYSTEM, org_id=tree.city_a, user_id=auditor.user_id, role=Role.AUDITOR
        )
    lapsed = httpx.get(url, headers=headers)
    assert lapsed.status_code == 403
    assert lapsed.json()["error"]["code"] == "openplatform.approval_lapsed"
    assert client_token(server, roster_app, MEMBERS).json()["error"] == "invalid_scope"
    operator = make_staff(tree.city_a, Role.OPERATOR)
    shown = api.get("/api/v1/oauth-approvals", headers=operator.headers).json()
    assert [(s["scope"], s["state"]) for s in shown[0]["scopes"]][0] == (MEMBERS, "lapsed")

    # Another staff member's approval brings it back (the same token works again).
    assert approve(api, operator, roster_app, MEMBERS).status_code == 204
    assert httpx.get(url, headers=headers).status_code == 200


def test_the_open_api_document_lists_the_roster_route(server: str) -> None:
    paths = httpx.get(f"{server}/open/v1/openapi.json").json()["paths"]
    assert "/open/v1/orgs/{org_id}/members" in paths
    assert "/api/v1/oauth-approvals" not in paths  # staff API: in the staff document

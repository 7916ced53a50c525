"""Points a function awards: paid from the points budget of an activity in the app's
subtree, never past it however many awards race, each one audited, once per key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.audit.models import AuditEntry
from gonghui.baas.functions import members_ops
from gonghui.baas.functions.sandbox import SdkRefusal
from gonghui.baas.permissions import Caller
from gonghui.benefits.models import Budget, LedgerEntry, PointsAccount
from gonghui.db import unit_of_work
from gonghui.orgs.models import Org, Role
from tests.activities.conftest import create_activity
from tests.baas.conftest import AppHandle
from tests.baas.devapp import functions_url, make_app
from tests.baas.functions.conftest import SignedInMember, signed_in_member
from tests.fixtures import StaffFactory, Tree

AWARD = (
    "def handler(event, context):\n    return context.sdk.call('benefits.award_points', event)\n"
)
AUDIT_ACTION = "benefits.points_awarded_by_function"
NOTHING_AWARDED = {"balance": 0, "spent": 0, "ledger": 0, "audit": 0}


def _award_function(api: httpx.Client, app: AppHandle) -> None:
    resp = api.put(
        functions_url(app, "/award"),
        json={"source": AWARD, "runs_as": "server"},
        headers=app.dev.headers,
    )
    assert resp.status_code in (200, 201), resp.text


def _award(api: httpx.Client, app: AppHandle, **event: Any) -> httpx.Response:
    return api.post(functions_url(app, "/award/invoke"), json=event, headers=app.server)


def _refusal(resp: httpx.Response) -> str:
    assert resp.status_code == 502, resp.text
    message: str = resp.json()["error"]["message"]
    return message.split(":", 1)[0]


def _books(activity_id: int, membership_id: int) -> dict[str, Any]:
    """What the award touched: the balance, the budget spent, ledger and audit rows."""
    with unit_of_work(read_only=True) as session:
        account = session.get(PointsAccount, membership_id)
        budget = session.get(Budget, activity_id)
        return {
            "balance": account.balance if account else 0,
            "spent": budget.points_spent if budget else None,
            "ledger": session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.membership_id == membership_id)
            ),
            "audit": session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == AUDIT_ACTION)
            ),
        }


@pytest.fixture
def city_a_app(api: httpx.Client, tree: Tree, make_staff: StaffFactory) -> AppHandle:
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "积分应用")
    _award_function(api, app)
    return app


@pytest.fixture
def member(tree: Tree) -> SignedInMember:
    return signed_in_member(tree.grassroots_a1x)


def _activity(
    api: httpx.Client, make_staff: StaffFactory, org_id: int, **fields: Any
) -> dict[str, Any]:
    operator = make_staff(org_id, Role.OPERATOR)
    return create_activity(api, operator.headers, org_id, **fields)


def test_a_function_awards_points_from_its_activitys_budget_once_per_key_with_an_audit_row(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    city_a_app: AppHandle,
    member: SignedInMember,
) -> None:
    activity = _activity(api, make_staff, tree.district_a1, budget_points=20)
    grant = {"membership_id": member.membership_id, "activity_id": activity["id"], "points": 15}
    first = _award(api, city_a_app, **grant, key="event-1")
    assert first.status_code == 200, first.text
    assert first.json()["result"] == {
        "membership_id": member.membership_id,
        "activity_id": activity["id"],
        "points": 15,
    }
    again = _award(api, city_a_app, **grant, key="event-1")  # a redelivered event
    assert again.json()["result"] == first.json()["result"]
    assert _books(activity["id"], member.membership_id) == {
        "balance": 15,
        "spent": 15,
        "ledger": 1,
        "audit": 1,
    }
    with unit_of_work(read_only=True) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == AUDIT_ACTION)).one()
        assert (entry.org_id, entry.subject_type, entry.subject_id) == (
            tree.district_a1,
            "membership",
            str(member.membership_id),
        )
        assert entry.details == {
            "app_id": city_a_app.id,
            "activity_id": activity["id"],
            "points": 15,
            "key": "event-1",
        }

    over = _award(api, city_a_app, **{**grant, "points": 6}, key="event-2")
    assert _refusal(over) == "functions.budget_exhausted"
    assert _books(activity["id"], member.membership_id) == {
        "balance": 15,
        "spent": 15,
        "ledger": 1,
        "audit": 1,
    }


def test_a_function_cannot_pay_points_from_an_activity_outside_its_apps_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, member: SignedInMember
) -> None:
    # The app sits at district A1; the member is below it; the activity is city A's own.
    app = make_app(api, make_staff(tree.district_a1, Role.DEVELOPER), tree.district_a1, "区应用")
    _award_function(api, app)
    above = _activity(api, make_staff, tree.city_a, budget_points=1000)
    elsewhere = _activity(api, make_staff, tree.city_b, budget_points=1000, title="深圳")
    for activity in (above, elsewhere):
        refused = _award(
            api,
            app,
            membership_id=member.membership_id,
            activity_id=activity["id"],
            points=10,
            key=f"k{activity['id']}",
        )
        assert _refusal(refused) == "functions.activity_not_found"
        assert _books(activity["id"], member.membership_id) == NOTHING_AWARDED


@pytest.mark.parametrize(
    ("budget", "activity_id", "code"),
    [
        (None, "missing", "functions.bad_sdk_call"),
        (None, "activity", "functions.no_points_budget"),
        (0, "activity", "functions.budget_exhausted"),
    ],
    ids=["no-activity", "no-points-budget", "empty-budget"],
)
def test_a_function_cannot_award_points_that_no_budget_pays_for(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    city_a_app: AppHandle,
    member: SignedInMember,
    budget: int | None,
    activity_id: str,
    code: str,
) -> None:
    activity = _activity(api, make_staff, tree.district_a1, budget_points=budget)
    grant: dict[str, Any] = {"membership_id": member.membership_id, "points": 10, "key": "k"}
    if activity_id == "activity":
        grant["activity_id"] = activity["id"]
    assert _refusal(_award(api, city_a_app, **grant)) == code
    assert _books(activity["id"], member.membership_id) == NOTHING_AWARDED


def test_concurrent_awards_never_pass_the_budget(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, member: SignedInMember
) -> None:
    activity = _activity(api, make_staff, tree.district_a1, budget_points=50)
    with unit_of_work(read_only=True) as session:
        city_a_path = session.get_one(Org, tree.city_a).path
    caller = Caller(app_id=1, org_id=tree.city_a, org_path=city_a_path, server=True)

    def award(n: int) -> str:
        args = {
            "membership_id": member.membership_id,
            "activity_id": activity["id"],
            "points": 5,
            "key": f"event-{n}",
        }
        try:
            with unit_of_work() as session:
                members_ops.award_points(session, caller, args)
        except SdkRefusal as exc:
            return exc.code
        return "awarded"

    with ThreadPoolExecutor(max_workers=8) as threads:
        outcomes = list(threads.map(award, range(24)))
    assert outcomes.count("awarded") == 10
    assert outcomes.count("functions.budget_exhausted") == 14
    assert _books(activity["id"], member.membership_id) == {
        "balance": 50,
        "spent": 50,
        "ledger": 10,
        "audit": 10,
    }

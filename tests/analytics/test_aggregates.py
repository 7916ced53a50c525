"""The scheduled aggregates: a subtree's figures are its orgs' rows added up, equal to what
the ledger and the participation tables say; an incremental run picks up new acts."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
from openpyxl import load_workbook  # type: ignore[import-untyped]
from sqlalchemy import select
from typer.testing import CliRunner

from gonghui import xlsx
from gonghui.analytics import aggregate
from gonghui.analytics.models import AggregateRun
from gonghui.cli import app
from gonghui.clock import local_day
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity, create_member, draw
from tests.analytics.conftest import Story, count_directly
from tests.fixtures import StaffFactory, Tree


def _overview(api: httpx.Client, headers: dict[str, str], org_id: int) -> dict:  # type: ignore[type-arg]
    resp = api.get(f"/api/v1/analytics/orgs/{org_id}", params={"months": 3}, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_a_subtree_adds_up_its_two_child_cities_as_the_ledger_says(
    api: httpx.Client, tree: Tree, story: Story
) -> None:
    aggregate.recompute()
    province = _overview(api, story.staff.headers, tree.province)
    month = province["monthly"][-1]
    direct = count_directly(tree.province)
    assert (direct.roster, direct.verified, direct.active, direct.draws) == (6, 5, 3, 4)
    assert month["roster_members"] == direct.roster
    assert month["verified_members"] == direct.verified
    assert month["active_members"] == direct.active
    assert month["participations"] == direct.draws
    assert month["coverage"] == 0.6
    assert province["computed_at"] is not None

    # The province's own members (none), then each city's subtree.
    parts = {p["org_id"]: p for p in province["orgs"]}
    assert [p["org_id"] for p in province["orgs"]] == [tree.province, tree.city_a, tree.city_b]
    for city in (tree.city_a, tree.city_b):
        counted = count_directly(city)
        part = parts[city]
        assert (part["roster_members"], part["verified_members"], part["active_members"]) == (
            counted.roster,
            counted.verified,
            counted.active,
        )
        assert part["issued_count"] == counted.issued
        city_view = _overview(api, story.staff.headers, city)["monthly"][-1]
        assert (city_view["verified_members"], city_view["active_members"]) == (
            counted.verified,
            counted.active,
        )
    assert (parts[tree.city_a]["verified_members"], parts[tree.city_b]["verified_members"]) == (
        3,
        2,
    )
    assert (parts[tree.city_a]["active_members"], parts[tree.city_b]["active_members"]) == (2, 1)
    assert parts[tree.city_b]["roster_members"] == 3
    assert parts[tree.province]["verified_members"] == 0

    issued = sum(b["issued_count"] for b in province["benefits"])
    issued_amount = sum(b["issued_amount"] for b in province["benefits"])
    assert (issued, issued_amount) == (direct.issued, direct.issued_amount)
    assert {b["kind"] for b in province["benefits"]} <= {"voucher"}

    (activity,) = province["activities"]
    assert activity["activity_id"] == story.activity["id"]
    assert (activity["participants"], activity["participations"]) == (3, 4)
    assert activity["eligible_members"] == 5
    assert activity["participation_rate"] == 0.6
    assert activity["budget_cents"] == 10_000
    assert activity["spent_cents"] == direct.issued_amount
    assert province["budget"] == {
        "activities": 1,
        "budget_cents": 10_000,
        "spent_cents": direct.issued_amount,
        "budget_points": 0,
        "spent_points": 0,
    }


def test_an_incremental_run_picks_up_new_participation(
    api: httpx.Client, tree: Tree, story: Story
) -> None:
    first = aggregate.recompute()
    assert first.full  # the first run is whole
    before = _overview(api, story.staff.headers, tree.city_b)["monthly"][-1]
    assert (before["verified_members"], before["active_members"]) == (2, 1)

    newcomer = create_member(tree.grassroots_b1)
    assert draw(api, story.activity["id"], story.b_members[1].headers).status_code == 200
    assert draw(api, story.activity["id"], newcomer.headers).status_code == 200
    # Nothing changes until the job runs: no request writes the aggregates.
    unchanged = _overview(api, story.staff.headers, tree.city_b)["monthly"][-1]
    assert unchanged == before

    second = aggregate.recompute()
    assert not second.full
    assert second.months[-1] == aggregate.month_of(aggregate.now())
    assert len(second.months) <= 2  # this month, and the last while its last day settles
    after = _overview(api, story.staff.headers, tree.city_b)["monthly"][-1]
    counted = count_directly(tree.city_b)
    assert (
        (after["verified_members"], after["active_members"], after["participations"])
        == (
            counted.verified,
            counted.active,
            counted.draws,
        )
        == (3, 3, 3)
    )
    (activity,) = _overview(api, story.staff.headers, tree.province)["activities"]
    assert (activity["participants"], activity["eligible_members"]) == (5, 6)
    with unit_of_work(read_only=True) as session:
        run = session.scalar(select(AggregateRun))
        assert run is not None
        assert run.full_at is not None
        assert run.full_at < run.computed_at


def test_an_activity_with_rules_counts_as_eligible_only_the_members_they_admit(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    staff = make_staff(tree.city_a, Role.OPERATOR)
    long_ago, lately = local_day() - timedelta(days=400), local_day() - timedelta(days=10)
    admitted = [
        create_member(tree.district_a1, tags=["劳模"], join_date=long_ago),
        create_member(tree.grassroots_a1x, tags=["青年", "劳模"], join_date=long_ago),
    ]
    refused = [
        create_member(tree.district_a1, tags=["劳模"], join_date=lately),  # too new
        create_member(tree.district_a1, tags=["劳模"]),  # no join date: a member since today
        create_member(tree.district_a1, tags=["青年"], join_date=long_ago),  # no such tag
    ]
    create_member(tree.grassroots_b1, tags=["劳模"], join_date=long_ago)  # another city
    rules = {"tags_any": ["劳模"], "min_membership_days": 365}
    models = create_activity(api, staff.headers, tree.city_a, title="劳模专享", eligibility=rules)
    everyone = create_activity(api, staff.headers, tree.city_a, title="全员抽奖")
    for member in admitted:
        assert draw(api, models["id"], member.headers).status_code == 200
    # The draws' own rules: those not counted as eligible may not take part.
    for member in refused:
        resp = draw(api, models["id"], member.headers)
        assert resp.json()["error"]["code"] == "activities.not_eligible", resp.text
    assert draw(api, everyone["id"], refused[0].headers).status_code == 200

    aggregate.recompute()
    figures = {
        a["activity_id"]: (a["participants"], a["eligible_members"], a["participation_rate"])
        for a in _overview(api, staff.headers, tree.city_a)["activities"]
    }
    assert figures == {models["id"]: (2, 2, 1.0), everyone["id"]: (1, 5, 0.2)}


def test_staff_of_another_org_and_members_are_refused(
    api: httpx.Client, tree: Tree, story: Story, make_staff: StaffFactory
) -> None:
    aggregate.recompute()
    other = make_staff(tree.city_b, Role.OPERATOR)
    for path in (
        f"/api/v1/analytics/orgs/{tree.city_a}",
        f"/api/v1/analytics/orgs/{tree.province}",
    ):
        resp = api.get(path, headers=other.headers)
        assert resp.status_code == 404, resp.text
        assert resp.json()["error"]["code"] == "org.not_found"
    resp = api.get(f"/api/v1/analytics/orgs/{tree.city_a}/monthly.xlsx", headers=other.headers)
    assert resp.status_code == 404
    assert (
        api.get(f"/api/v1/analytics/orgs/{tree.city_b}", headers=other.headers).status_code == 200
    )
    # A developer holds no analytics.read.
    developer = make_staff(tree.city_b, Role.DEVELOPER)
    assert (
        api.get(f"/api/v1/analytics/orgs/{tree.city_b}", headers=developer.headers).status_code
        == 404
    )

    member = story.b_members[0]
    for resp in (
        api.get(f"/api/v1/analytics/orgs/{tree.city_b}", headers=member.headers),
        api.get(f"/api/v1/analytics/orgs/{tree.city_b}/orgs.xlsx", headers=member.headers),
        api.post("/api/v1/analytics/refresh", json={}, headers=member.headers),
    ):
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"]["code"] == "accounts.not_staff"
    assert api.get(f"/api/v1/analytics/orgs/{tree.city_b}").status_code == 401


def test_refresh_is_queued_and_rate_limited(
    api: httpx.Client, tree: Tree, story: Story, make_staff: StaffFactory
) -> None:
    from gonghui.tasks.models import Task

    resp = api.post("/api/v1/analytics/refresh", json={}, headers=story.staff.headers)
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    again = api.post("/api/v1/analytics/refresh", json={}, headers=story.staff.headers)
    assert again.status_code == 429
    assert again.json()["error"]["code"] == "analytics.refresh_throttled"
    full = make_staff(tree.city_b, Role.ADMIN)
    resp = api.post("/api/v1/analytics/refresh", json={"full": True}, headers=full.headers)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "analytics.full_refresh_admin_only"
    with unit_of_work(read_only=True) as session:
        queued = session.scalars(select(Task).where(Task.name == "analytics.refresh")).all()
    assert [(t.id, t.args) for t in queued] == [(task_id, {"full": False})]


def test_each_figure_set_exports_as_xlsx_with_the_figures_shown(
    api: httpx.Client, tree: Tree, story: Story
) -> None:
    aggregate.recompute()
    shown = _overview(api, story.staff.headers, tree.province)
    sheets = {}
    for figure_set in ("monthly", "benefits", "orgs", "activities"):
        resp = api.get(
            f"/api/v1/analytics/orgs/{tree.province}/{figure_set}.xlsx",
            params={"months": 3},
            headers=story.staff.headers,
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == xlsx.MEDIA_TYPE
        sheet = load_workbook(io.BytesIO(resp.content)).active
        assert sheet.title == figure_set
        rows = list(sheet.iter_rows(values_only=True))
        assert rows[0][:2] == ("org", "广东省总工会")
        sheets[figure_set] = [dict(zip(rows[1], row, strict=True)) for row in rows[2:]]
    assert [r["month"] for r in sheets["monthly"]] == shown["months"]
    this_month = sheets["monthly"][-1]
    assert (this_month["verified_members"], this_month["active_members"]) == (5, 3)
    assert this_month["coverage_pct"] == 60
    assert [(r["org_id"], r["verified_members"], r["benefits_issued"]) for r in sheets["orgs"]] == [
        (p["org_id"], p["verified_members"], p["issued_count"]) for p in shown["orgs"]
    ]
    assert [(r["kind"], r["issued_count"]) for r in sheets["benefits"]] == [
        (b["kind"], b["issued_count"]) for b in shown["benefits"]
    ]
    (activity,) = sheets["activities"]
    assert (activity["activity_id"], activity["title"]) == (story.activity["id"], "十一月抽奖")
    assert (activity["participants"], activity["eligible_members"]) == (3, 5)
    assert activity["participation_pct"] == 60
    resp = api.get(
        f"/api/v1/analytics/orgs/{tree.province}/secrets.xlsx", headers=story.staff.headers
    )
    assert resp.status_code == 422


def test_a_run_that_finishes_after_a_later_one_keeps_the_later_figures(
    api: httpx.Client, tree: Tree, story: Story
) -> None:
    aggregate.recompute()
    started = aggregate.now()
    with unit_of_work(read_only=True) as session:
        stale = aggregate.compute(session, at=started)
    newcomer = create_member(tree.grassroots_b1)
    assert draw(api, story.activity["id"], newcomer.headers).status_code == 200
    later = aggregate.recompute()
    with unit_of_work() as session:
        aggregate.store(session, stale, at=started)
    month = _overview(api, story.staff.headers, tree.city_b)["monthly"][-1]
    assert (month["verified_members"], month["active_members"]) == (3, 2)
    assert not later.full


def test_an_operator_recomputes_everything_from_the_command_line(
    api: httpx.Client, tree: Tree, story: Story
) -> None:
    result = CliRunner().invoke(app, ["analytics", "aggregate", "--full"])
    assert result.exit_code == 0, result.output
    assert "1 activities" in result.output
    month = _overview(api, story.staff.headers, tree.province)["monthly"][-1]
    assert (month["verified_members"], month["active_members"]) == (5, 3)
    with unit_of_work(read_only=True) as session:
        run = session.scalar(select(AggregateRun))
        assert run is not None
        assert run.full_at == run.computed_at

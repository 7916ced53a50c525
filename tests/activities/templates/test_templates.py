"""Operators save an activity as a named template of their org, find it down the tree, and
start new drafts from it: the design travels, the data never does."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from gonghui.activities.lottery.models import Draw, PoolPrize
from gonghui.activities.models import Activity, Counter
from gonghui.activities.templates.models import ActivityTemplate
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.competition.conftest import competition_config, make_form_app
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    draw,
    lottery_config,
    quiz_config,
    window,
)
from tests.fixtures import Staff, StaffFactory, Tree

BASE = "/api/v1/activity-templates"


def save(
    api: httpx.Client, staff: Staff, activity_id: int, name: str = "月度抽奖"
) -> httpx.Response:
    return api.post(BASE, json={"activity_id": activity_id, "name": name}, headers=staff.headers)


def saved(api: httpx.Client, staff: Staff, org_id: int, name: str) -> dict[str, Any]:
    """A template ``name`` of ``org_id``, saved from a fresh draft lottery there."""
    activity = create_activity(api, staff.headers, org_id, publish=False, title=name)
    resp = save(api, staff, activity["id"], name)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def use(
    api: httpx.Client, staff: Staff, template_id: int, org_id: int, **extra: Any
) -> httpx.Response:
    return api.post(
        f"{BASE}/{template_id}/activities",
        json={"org_id": org_id, **window(24 * 30), **extra},
        headers=staff.headers,
    )


def names(api: httpx.Client, staff: Staff, **params: Any) -> list[str]:
    resp = api.get(BASE, params=params, headers=staff.headers)
    assert resp.status_code == 200, resp.text
    return [t["name"] for t in resp.json()]


def activity_count() -> int:
    with unit_of_work(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Activity)) or 0


def template_audit() -> list[tuple[str, str | None, dict[str, Any] | None]]:
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.subject_id, AuditEntry.details)
            .where(AuditEntry.subject_type == "activity_template")
            .order_by(AuditEntry.id)
        )
        return [(a, s, d) for a, s, d in rows]


def test_a_template_keeps_the_design_and_a_draft_from_it_starts_with_no_data(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    member = make_member(tree.city_a, tags=["一线职工"], join_date=date(2020, 1, 1))
    source = create_activity(
        api,
        op.headers,
        tree.city_a,
        title="十一月抽奖",
        description="每月一抽",
        config=lottery_config(free_draws_per_day=2),
        eligibility={"min_membership_days": 30, "tags_any": ["一线职工"]},
        limit_total=5,
        limit_per_day=2,
        budget_cents=500_000,
    )
    assert draw(api, source["id"], member.headers).status_code == 200

    resp = save(api, op, source["id"], " 月度抽奖 ")
    assert resp.status_code == 201, resp.text
    template = resp.json()
    assert {k: template[k] for k in ("org_id", "org_name", "name", "kind", "title")} == {
        "org_id": tree.city_a,
        "org_name": "广州市总工会",
        "name": "月度抽奖",
        "kind": "lottery",
        "title": "十一月抽奖",
    }
    assert template["description"] == "每月一抽"
    assert template["config"] == source["config"]
    assert template["eligibility"] == {"min_membership_days": 30, "tags_any": ["一线职工"]}
    assert (template["limit_total"], template["limit_per_day"]) == (5, 2)
    assert (template["budget_cents"], template["budget_points"]) == (500_000, None)
    assert template["source_activity_id"] == source["id"]
    assert template["left_out"] == []

    resp = use(api, op, template["id"], tree.district_a1, title="十二月抽奖")
    assert resp.status_code == 201, resp.text
    copy = resp.json()
    assert copy["status"] == "draft"
    assert (copy["org_id"], copy["title"], copy["description"]) == (
        tree.district_a1,
        "十二月抽奖",
        "每月一抽",
    )
    assert copy["config"] == source["config"]
    assert copy["eligibility"] == source["eligibility"]
    assert (copy["limit_total"], copy["budget_cents"]) == (5, 500_000)
    assert copy["seed_commitment"] is None
    assert copy["cloned_from_id"] is None
    with unit_of_work(read_only=True) as session:
        for model in (Draw, PoolPrize, Counter):
            rows = select(func.count()).select_from(model).where(model.activity_id == copy["id"])
            assert session.scalar(rows) == 0, model

    published = api.post(f"/api/v1/activities/{copy['id']}/publish", headers=op.headers)
    assert published.status_code == 200, published.text
    stats = api.get(f"/api/v1/activities/{copy['id']}/stats", headers=op.headers).json()
    assert stats["draws"] == 0
    assert [(p["initial_stock"], p["stock"]) for p in stats["prizes"]] == [(5, 5), (0, 0)]

    assert template_audit() == [
        (
            "activities.template_save",
            str(template["id"]),
            {"name": "月度抽奖", "source_activity_id": source["id"]},
        )
    ]
    with unit_of_work(read_only=True) as session:
        created = session.scalar(
            select(AuditEntry.details).where(
                AuditEntry.action == "activities.create", AuditEntry.subject_id == str(copy["id"])
            )
        )
    assert created == {"kind": "lottery", "title": "十二月抽奖", "template_id": template["id"]}


def test_templates_are_shared_down_the_tree_never_up_or_sideways(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    province = make_staff(tree.province, Role.OPERATOR)
    city_a = make_staff(tree.city_a, Role.OPERATOR)
    city_b = make_staff(tree.city_b, Role.OPERATOR)
    district = make_staff(tree.district_a1, Role.OPERATOR)
    grassroots_b = make_staff(tree.grassroots_b1, Role.OPERATOR)
    ours = saved(api, province, tree.province, "省级模板")
    a = saved(api, city_a, tree.city_a, "市A模板")
    saved(api, district, tree.district_a1, "区模板")

    assert names(api, district) == ["区模板", "市A模板", "省级模板"]
    assert names(api, city_a) == ["市A模板", "省级模板"]  # not up: the district's stays below
    assert names(api, city_b) == ["省级模板"]  # not sideways
    assert names(api, grassroots_b) == ["省级模板"]
    assert names(api, province) == ["省级模板"]
    assert names(api, city_a, kind="quiz") == []
    # An org one manages lists its own with org_id; one beside or below lists nothing.
    assert names(api, city_a, org_id=tree.district_a1) == ["区模板"]
    assert names(api, city_b, org_id=tree.city_a) == []
    assert names(api, district, org_id=tree.province) == ["省级模板"]

    for outsider in (city_b, grassroots_b):
        resp = api.get(f"{BASE}/{a['id']}", headers=outsider.headers)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "activity_template.not_found"
        before = activity_count()
        resp = use(api, outsider, a["id"], tree.city_b)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "activity_template.not_found"
        assert activity_count() == before
    assert api.get(f"{BASE}/{ours['id']}", headers=grassroots_b.headers).status_code == 200
    made = use(api, grassroots_b, ours["id"], tree.grassroots_b1)
    assert made.status_code == 201, made.text
    assert made.json()["org_id"] == tree.grassroots_b1


def test_only_staff_of_the_owning_org_rename_or_delete_and_each_change_is_audited(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    province = make_staff(tree.province, Role.OPERATOR)
    city_a = make_staff(tree.city_a, Role.OPERATOR)
    city_b = make_staff(tree.city_b, Role.OPERATOR)
    district = make_staff(tree.district_a1, Role.OPERATOR)
    template = saved(api, city_a, tree.city_a, "市A模板")
    saved(api, city_a, tree.city_a, "另一个")
    url = f"{BASE}/{template['id']}"

    below = api.patch(url, json={"name": "改名"}, headers=district.headers)
    assert below.status_code == 403
    assert below.json()["error"]["code"] == "activity_template.not_yours"
    assert api.delete(url, headers=district.headers).status_code == 403
    beside = api.patch(url, json={"name": "改名"}, headers=city_b.headers)
    assert beside.status_code == 404
    assert api.delete(url, headers=city_b.headers).status_code == 404
    taken = api.patch(url, json={"name": "另一个"}, headers=city_a.headers)
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "activity_template.name_taken"
    assert taken.json()["error"]["details"][0]["field"] == "name"
    assert api.get(url, headers=city_a.headers).json()["name"] == "市A模板"

    renamed = api.patch(url, json={"name": "月度抽奖"}, headers=city_a.headers)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "月度抽奖"
    assert api.delete(url, headers=province.headers).status_code == 204
    assert api.get(url, headers=city_a.headers).status_code == 404
    assert names(api, city_a) == ["另一个"]

    assert [(a, s, d) for a, s, d in template_audit() if s == str(template["id"])][1:] == [
        (
            "activities.template_rename",
            str(template["id"]),
            {"before": "市A模板", "after": "月度抽奖"},
        ),
        ("activities.template_delete", str(template["id"]), {"name": "月度抽奖"}),
    ]


def test_a_draft_from_a_template_goes_only_into_an_org_the_caller_manages(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    city_a = make_staff(tree.city_a, Role.OPERATOR)
    district = make_staff(tree.district_a1, Role.OPERATOR)
    auditor = make_staff(tree.city_a, Role.AUDITOR)
    template = saved(api, city_a, tree.city_a, "市A模板")
    before = activity_count()

    up = use(api, district, template["id"], tree.city_a)
    assert up.status_code == 404
    assert up.json()["error"]["code"] == "org.not_found"
    start = window()["starts_at"]
    backwards = use(api, district, template["id"], tree.district_a1, ends_at=start)
    assert backwards.status_code == 422
    assert backwards.json()["error"]["details"][0]["field"] == "ends_at"
    extra = use(api, district, template["id"], tree.district_a1, status="live")
    assert extra.status_code == 422
    assert extra.json()["error"]["code"] == "request.invalid"
    assert activity_count() == before

    assert names(api, auditor) == []
    assert api.get(f"{BASE}/{template['id']}", headers=auditor.headers).status_code == 404
    assert use(api, auditor, template["id"], tree.city_a).status_code == 404
    assert activity_count() == before


def test_bad_saves_are_refused_and_leave_nothing(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    city_a = make_staff(tree.city_a, Role.OPERATOR)
    city_b = make_staff(tree.city_b, Role.OPERATOR)
    activity = create_activity(api, city_a.headers, tree.city_a, publish=False)
    assert save(api, city_a, activity["id"]).status_code == 201

    again = save(api, city_a, activity["id"])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "activity_template.name_taken"
    for name in ("", "   ", "名" * 101):
        resp = save(api, city_a, activity["id"], name)
        assert resp.status_code == 422, name
        assert resp.json()["error"]["details"][0]["field"] == "name"
    other = save(api, city_b, activity["id"], "偷来的")
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "activity.not_found"
    missing = api.post(BASE, json={"activity_id": 2**63, "name": "x"}, headers=city_a.headers)
    assert missing.status_code == 422
    assert api.get(f"{BASE}/999999", headers=city_a.headers).status_code == 404
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(ActivityTemplate)) == 1
    # A second org may use the same name.
    b_activity = create_activity(api, city_b.headers, tree.city_b, publish=False)
    assert save(api, city_b, b_activity["id"]).status_code == 201


def test_links_to_other_activities_and_the_org_s_wechat_app_stay_behind(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    district = make_staff(tree.district_a1, Role.OPERATOR)
    lottery = create_activity(api, op.headers, tree.city_a, title="配套抽奖")
    reward = {"type": "chances", "chances": 2, "lottery_activity_id": lottery["id"]}
    quiz = create_activity(api, op.headers, tree.city_a, config=quiz_config(reward=reward))
    resp = save(api, op, quiz["id"], "学法答题")
    assert resp.status_code == 201, resp.text
    template = resp.json()
    assert template["config"]["quiz"]["reward"] is None
    assert template["left_out"] == ["config.quiz.reward.lottery_activity_id"]
    made = use(api, district, template["id"], tree.district_a1)
    assert made.status_code == 201, made.text
    assert made.json()["config"]["quiz"]["reward"] is None
    assert made.json()["config"]["quiz"]["question_count"] == 3

    grab = {
        "kind": "voucher_grab",
        "voucher_grab": {
            "stocks": [
                {"name": "十元券", "coupon_amount_cents": 1000, "max_coupons": 100},
            ],
            "appid": "wx_city_a_app",
            "max_per_org": 50,
        },
    }
    grab_activity = create_activity(api, op.headers, tree.city_a, publish=False, config=grab)
    template = save(api, op, grab_activity["id"], "消费券").json()
    assert template["config"]["voucher_grab"]["appid"] == ""
    assert template["config"]["voucher_grab"]["stocks"] == [
        {
            "name": "十元券",
            "coupon_amount_cents": 1000,
            "threshold_cents": 0,
            "max_coupons": 100,
            "max_per_member": 1,
        }
    ]
    assert template["config"]["voucher_grab"]["max_per_org"] == 50
    assert template["left_out"] == ["config.voucher_grab.appid"]


def test_a_template_a_rule_change_made_invalid_is_refused_field_by_field(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    template = saved(api, op, tree.city_a, "旧模板")
    with unit_of_work() as session:
        row = session.get(ActivityTemplate, template["id"])
        assert row is not None
        row.config = {**row.config, "lottery": {**row.config["lottery"], "prizes": []}}
    before = activity_count()
    resp = use(api, op, template["id"], tree.city_a)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "activities.bad_config"
    assert [d["field"] for d in resp.json()["error"]["details"]] == [
        "config.lottery.lottery.prizes"
    ]
    assert activity_count() == before


def test_a_competition_s_dates_keep_their_distance_from_the_start_in_a_draft_from_a_template(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    app = make_form_app(api, tree.city_a)
    config = competition_config(app.id)
    source = create_activity(
        api, operator.headers, tree.city_a, publish=False, title="职工技能大赛", config=config
    )
    resp = save(api, operator, source["id"], "技能大赛")
    assert resp.status_code == 201, resp.text

    made = use(api, operator, resp.json()["id"], tree.city_a)  # starts 30 days later
    assert made.status_code == 201, made.text
    moved = datetime.fromisoformat(made.json()["starts_at"]) - datetime.fromisoformat(
        source["starts_at"]
    )
    assert moved > timedelta(days=29)
    rules, before = made.json()["config"]["competition"], config["competition"]
    for name in ("registration_opens_at", "registration_closes_at", "submission_deadline"):
        shifted = datetime.fromisoformat(before[name]) + moved
        assert datetime.fromisoformat(rules[name]) == shifted, name


def test_a_union_below_uses_a_competition_template_with_its_own_registration_form(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    province = make_staff(tree.province, Role.OPERATOR)
    config = competition_config(make_form_app(api, tree.province).id)
    config["competition"]["form"]["labels"] = {"title": "作品名称"}
    source = create_activity(
        api, province.headers, tree.province, publish=False, title="全省职工技能大赛", config=config
    )
    template = save(api, province, source["id"], "技能大赛").json()["id"]
    city = make_staff(tree.city_a, Role.OPERATOR)
    lottery = saved(api, city, tree.city_a, "月度抽奖")["id"]

    # The province's form is not the city's to use: told which field, nothing made.
    before = activity_count()
    theirs = use(api, city, template, tree.city_a)
    assert theirs.status_code == 422, theirs.text
    assert theirs.json()["error"]["code"] == "competition.bad_form"
    assert activity_count() == before

    own = make_form_app(api, tree.city_a)
    made = use(api, city, template, tree.city_a, form={"app_id": own.id, "table": "signup"})
    assert made.status_code == 201, made.text
    form = made.json()["config"]["competition"]["form"]
    assert form == {"app_id": own.id, "table": "signup", "labels": {"title": "作品名称"}}

    refused = use(api, city, lottery, tree.city_a, form={"app_id": own.id, "table": "signup"})
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "form"
    assert activity_count() == before + 1

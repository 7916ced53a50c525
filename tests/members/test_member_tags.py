"""Member tags: staff set a person's tags on the roster; the member's sign-in sees them at
once, so a member who gets a tag can join an activity limited to it."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members.models import Membership
from gonghui.orgs.models import Role
from gonghui.web.session import ACCESS_COOKIE
from tests.activities.conftest import create_activity, create_member, lottery_config
from tests.fixtures import StaffFactory, Tree, page_csrf
from tests.members.conftest import (
    HEADER,
    MemberFactory,
    Uploader,
    csv_bytes,
    id_number,
    report_rows,
)

PLENTY = lottery_config([{"name": "谢谢参与", "kind": "none", "weight": 1}], free_draws_per_day=10)


def _entry_of(membership_id: int) -> int:
    with unit_of_work(read_only=True) as session:
        membership = session.get(Membership, membership_id)
        assert membership is not None
        return membership.roster_entry_id


def test_member_who_gets_a_tag_becomes_eligible_for_a_tag_restricted_activity(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api,
        operator.headers,
        tree.city_a,
        config=PLENTY,
        eligibility={"min_membership_days": 0, "tags_any": ["劳模"]},
    )
    member = create_member(tree.grassroots_a1x)
    draw = f"/api/v1/activities/{activity['id']}/draws"
    refused = api.post(draw, headers=member.headers)
    assert refused.json()["error"]["code"] == "activities.not_eligible"

    entry_id = _entry_of(member.membership_id)
    resp = api.put(
        f"/api/v1/roster/{entry_id}/tags",
        json={"tags": [" 劳模 ", "一线职工", "劳模", ""]},
        headers=operator.headers,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["tags"] == ["劳模", "一线职工"]
    assert api.get(f"/api/v1/roster/{entry_id}", headers=operator.headers).json()["tags"] == [
        "劳模",
        "一线职工",
    ]
    assert api.post(draw, headers=member.headers).status_code == 200
    with unit_of_work(read_only=True) as session:
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "members.set_tags")
        ).one()
    assert (audited.actor_user_id, audited.details) == (
        operator.user_id,
        {"before": [], "after": ["劳模", "一线职工"]},
    )


def test_staff_cannot_tag_people_outside_their_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    member = create_member(tree.grassroots_a1x)
    entry_id = _entry_of(member.membership_id)
    outsider = make_staff(tree.city_b, Role.OPERATOR)
    resp = api.put(
        f"/api/v1/roster/{entry_id}/tags", json={"tags": ["劳模"]}, headers=outsider.headers
    )
    assert resp.status_code == 404
    with unit_of_work(read_only=True) as session:
        assert session.get(Membership, member.membership_id).tags == []  # type: ignore[union-attr]


def test_bad_tags_are_refused_and_nothing_changes(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    member = create_member(tree.grassroots_a1x)
    entry_id = _entry_of(member.membership_id)
    resp = api.put(
        f"/api/v1/roster/{entry_id}/tags", json={"tags": ["长" * 33]}, headers=operator.headers
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "members.invalid_tags"
    assert api.get(f"/api/v1/roster/{entry_id}", headers=operator.headers).json()["tags"] == []


ZHANG = id_number("44010619900307123")
TAGGED_HEADER = [*HEADER, "标签"]


def _roster_tags(api: httpx.Client, org_id: int, headers: dict[str, str]) -> list[list[str]]:
    page = api.get(f"/api/v1/orgs/{org_id}/roster", headers=headers).json()
    return [item["tags"] for item in page["items"]]


def test_roster_file_tags_reach_the_member_and_a_file_without_them_keeps_them(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    upload: Uploader,
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    first = [["张三", ZHANG, "", "M1", "GZ-TH-01", "", "劳模；一线职工"]]
    job = upload(tree.city_a, csv_bytes(first, header=TAGGED_HEADER), operator.headers)
    assert (job["rows_ok"], job["rows_failed"]) == (1, 0)
    assert _roster_tags(api, tree.city_a, operator.headers) == [["劳模", "一线职工"]]

    member = make_member()
    verified = api.post(
        "/api/v1/members/verify",
        json={"name": "张三", "id_number": ZHANG},
        headers=member.headers,
    )
    assert verified.status_code == 201, verified.text
    activity = create_activity(
        api,
        operator.headers,
        tree.city_a,
        config=PLENTY,
        eligibility={"min_membership_days": 0, "tags_any": ["先进个人"]},
    )
    draw = f"/api/v1/activities/{activity['id']}/draws"
    assert api.post(draw, headers=member.headers).status_code == 403

    second = [["张三", ZHANG, "", "M1", "GZ-TH-01", "", "先进个人"]]
    upload(tree.city_a, csv_bytes(second, header=TAGGED_HEADER), operator.headers)
    assert _roster_tags(api, tree.city_a, operator.headers) == [["先进个人"]]
    assert api.post(draw, headers=member.headers).status_code == 200

    untagged = [["张三", ZHANG, "", "M2", "GZ-TH-01", ""]]
    upload(tree.city_a, csv_bytes(untagged), operator.headers)
    assert _roster_tags(api, tree.city_a, operator.headers) == [["先进个人"]]
    with unit_of_work(read_only=True) as session:
        tags = session.scalars(select(Membership.tags)).all()
    assert tags == [["先进个人"]]


def test_roster_rows_with_bad_tags_are_reported(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, upload: Uploader
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    rows = [["张三", ZHANG, "", "", "GZ-TH-01", "", "长" * 33]]
    job = upload(tree.city_a, csv_bytes(rows, header=TAGGED_HEADER), operator.headers)
    assert (job["rows_ok"], job["rows_failed"]) == (0, 1)
    assert report_rows(api, job["id"], operator.headers) == [(2, "tags", "tags.invalid")]


def _console_form(api: httpx.Client, staff_headers: dict[str, str]) -> tuple[dict[str, str], str]:
    """The staff member's console cookie (their password sign-in's token) and the roster
    page's CSRF token."""
    token = staff_headers["Authorization"].removeprefix("Bearer ")
    cookie = {"Cookie": f"{ACCESS_COOKIE}={token}"}
    page = api.get("/console/roster", headers=cookie)
    assert page.status_code == 200, page.text
    csrf = page_csrf(page.text)
    assert csrf
    return cookie, csrf


def test_operator_sets_tags_in_the_console(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    member = create_member(tree.grassroots_a1x)
    entry_id = _entry_of(member.membership_id)
    operator = make_staff(tree.city_a, Role.OPERATOR)
    number = api.post(
        f"/api/v1/roster/{entry_id}/unmask",
        json={"field": "id_number", "reason": "核对标签"},
        headers=operator.headers,
    ).json()["value"]
    cookie, csrf = _console_form(api, operator.headers)
    saved = api.post(
        "/console/roster/tags",
        data={"id_number": number, "tags": "劳模；一线职工", "csrf": csrf},
        headers=cookie,
    )
    assert saved.status_code == 200
    assert "的标签：劳模，一线职工" in saved.text
    with unit_of_work(read_only=True) as session:
        membership = session.get(Membership, member.membership_id)
        assert membership is not None
        assert membership.tags == ["劳模", "一线职工"]

    outsider = make_staff(tree.city_b, Role.OPERATOR)
    cookie_b, csrf_b = _console_form(api, outsider.headers)
    refused = api.post(
        "/console/roster/tags",
        data={"id_number": number, "tags": "", "csrf": csrf_b},
        headers=cookie_b,
    )
    assert "您管理的名册中没有该身份证号" in refused.text
    with unit_of_work(read_only=True) as session:
        membership = session.get(Membership, member.membership_id)
        assert membership is not None
        assert membership.tags == ["劳模", "一线职工"]

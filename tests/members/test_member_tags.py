"""Member tags: staff set a person's tags on the roster; the member's sign-in sees them at
once, so a member who gets a tag can join an activity limited to it."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members.models import Membership
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity, create_member, lottery_config
from tests.fixtures import StaffFactory, Tree

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

"""The console's pages for what was API-only (staff grants, the roster, prize shipping,
cloning) refuse staff of another org and members, as the API does; unmasking is audited."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.accounts.access import issue_access_token
from gonghui.activities.models import Activity
from gonghui.audit.models import AuditEntry
from gonghui.benefits.models import Prize, PrizeStatus
from gonghui.db import unit_of_work
from gonghui.errors import PermissionDenied
from gonghui.members.models import Membership, RosterEntry
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Role, StaffRole
from gonghui.pii import PiiField, unseal
from gonghui.tenancy import ROLE_PERMISSIONS, Actor, Grant, Permission
from tests.activities.conftest import (
    Member,
    create_activity,
    create_member,
    draw,
    lottery_config,
)
from tests.console.helpers import Console, console
from tests.fixtures import StaffFactory, Tree

ADDRESS = {"name": "张三", "phone": "13800138000", "address": "广州市天河区软件路1号"}


def member_console(api: httpx.Client, member: Member) -> Console:
    return Console(api, issue_access_token(user_id=member.user_id, session_id=member.session_id))


def _entry_of(member: Member) -> int:
    with unit_of_work(read_only=True) as session:
        membership = session.get(Membership, member.membership_id)
        assert membership is not None
        return membership.roster_entry_id


def _unmasks() -> list[tuple[int | None, str | None, str | None]]:
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "pii.unmask"))
        return [(a.actor_user_id, a.field, a.reason) for a in rows]


def _roles(org_id: int) -> list[tuple[int, str]]:
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(select(StaffRole).where(StaffRole.org_id == org_id))
        return sorted((r.user_id, str(r.role)) for r in rows)


def test_staff_grants_in_the_console_stay_within_the_granters_rights(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    admin = make_staff(tree.city_a, Role.ADMIN)
    newcomer = make_staff(None)
    page = console(api, admin)
    listed = page.get(f"/console/staff?org_id={tree.city_a}")
    assert listed.status_code == 200
    assert admin.username in listed.text

    granted = page.post(
        "/console/staff/grants",
        {"org_id": str(tree.district_a1), "username": newcomer.username, "role": "operator"},
        form_page="/console/staff",
    )
    assert granted.status_code == 303
    assert granted.headers["location"].endswith("done=granted")
    assert _roles(tree.district_a1) == [(newcomer.user_id, "operator")]

    # Staff of another city, an operator (no staff.manage) and a member: refused, nothing
    # written.
    other = console(api, make_staff(tree.city_b, Role.ADMIN))
    operator = console(api, make_staff(tree.city_a, Role.OPERATOR))
    for outsider in (other, operator):
        refused = outsider.post(
            "/console/staff/grants",
            {"org_id": str(tree.district_a1), "username": newcomer.username, "role": "admin"},
            form_page="/console/staff",
        )
        assert refused.headers["location"].endswith("error=error.org.not_found")
        revoke = outsider.post(
            "/console/staff/grants/revoke",
            {"org_id": str(tree.district_a1), "user_id": str(newcomer.user_id), "role": "operator"},
            form_page="/console/staff",
        )
        assert revoke.headers["location"].endswith("error=error.org.not_found")
    # The other city's admin does not see city A's staff.
    assert newcomer.username not in other.get(f"/console/staff?org_id={tree.district_a1}").text
    assert _roles(tree.district_a1) == [(newcomer.user_id, "operator")]

    member = member_console(api, create_member(tree.grassroots_a1x))
    assert member.get("/console/staff").status_code == 303  # to the console's sign-in
    posted = api.post(
        "/console/staff/grants",
        data={"org_id": str(tree.district_a1), "username": "x", "role": "admin", "csrf": "x"},
        headers=member.cookie,
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/console/login")

    revoked = page.post(
        "/console/staff/grants/revoke",
        {"org_id": str(tree.district_a1), "user_id": str(newcomer.user_id), "role": "operator"},
        form_page="/console/staff",
    )
    assert revoked.headers["location"].endswith("done=revoked")
    assert _roles(tree.district_a1) == []
    with unit_of_work(read_only=True) as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(
                AuditEntry.subject_type == "user", AuditEntry.subject_id == str(newcomer.user_id)
            )
            .order_by(AuditEntry.id)
        ).all()
    assert actions == ["staff.grant", "staff.revoke"]


def test_no_one_grants_a_role_beyond_their_own_rights(
    tree: Tree, make_staff: StaffFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a role to manage staff without holding every right, its holders could grant
    only roles whose every right they hold there."""
    monkeypatch.setitem(
        ROLE_PERMISSIONS,
        Role.OPERATOR,
        ROLE_PERMISSIONS[Role.OPERATOR] | {Permission.STAFF_MANAGE},
    )
    newcomer = make_staff(None)
    with unit_of_work(read_only=True) as session:
        path = orgs.get_org(session, actor=Actor(None, True), org_id=tree.city_a).path
    operator = Actor(user_id=None, grants=(Grant(tree.city_a, path, Role.OPERATOR),))
    with unit_of_work() as session, pytest.raises(PermissionDenied) as refused:
        orgs.grant_role(
            session, actor=operator, org_id=tree.district_a1, user_id=newcomer.user_id,
            role=Role.ADMIN,
        )  # fmt: skip
    assert refused.value.code == "orgs.role_beyond_own_rights"
    assert _roles(tree.district_a1) == []
    with unit_of_work() as session:
        orgs.grant_role(
            session, actor=operator, org_id=tree.district_a1, user_id=newcomer.user_id,
            role=Role.OPERATOR,
        )  # fmt: skip
    assert _roles(tree.district_a1) == [(newcomer.user_id, "operator")]


def test_roster_search_unmask_and_transfer_are_the_operators_own(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    member = create_member(tree.grassroots_a1x, name="李四")
    entry_id = _entry_of(member)
    operator_staff = make_staff(tree.city_a, Role.OPERATOR)
    operator = console(api, operator_staff)
    outsider = console(api, make_staff(tree.city_b, Role.OPERATOR))

    # Found by exact ID number within the subtree, masked; nobody in city B's.
    with unit_of_work(read_only=True) as session:
        entry = session.get(RosterEntry, entry_id)
        assert entry is not None
        number = unseal(PiiField.ID_NUMBER, entry.id_number_enc)
    search = f"/console/roster/entries?org_id={tree.city_a}&id_number={number}"
    found = operator.get(search)
    assert found.status_code == 200
    assert "李*" in found.text
    assert "李四" not in found.text
    assert f"/console/roster/entries/{entry_id}" in found.text
    theirs = outsider.get(search)
    assert f"/console/roster/entries/{entry_id}" not in theirs.text
    assert outsider.get(f"/console/roster/entries/{entry_id}").status_code == 404

    form = f"/console/roster/entries/{entry_id}"
    refused = outsider.post(
        f"{form}/unmask", {"field": "id_number", "reason": "核对"}, form_page="/console/"
    )
    assert refused.status_code == 404
    assert _unmasks() == []

    shown = operator.post(f"{form}/unmask", {"field": "name", "reason": "核对身份"}, form_page=form)
    assert shown.status_code == 200
    assert "李四" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert _unmasks() == [(operator_staff.user_id, "name", "核对身份")]
    # The entry's page, read again, is masked.
    assert "<strong>李四" not in operator.get(form).text

    moved = outsider.post(
        f"{form}/transfer", {"to_org_id": str(tree.grassroots_b1)}, form_page="/console/"
    )
    assert moved.status_code == 404
    moved = operator.post(
        f"{form}/transfer", {"to_org_id": str(tree.district_a1), "reason": "调动"}, form_page=form
    )
    assert moved.status_code == 303
    with unit_of_work(read_only=True) as session:
        assert session.get(RosterEntry, entry_id).org_id == tree.district_a1  # type: ignore[union-attr]

    member_page = member_console(api, create_member(tree.grassroots_a1x))
    assert member_page.get(form).status_code == 303


def test_prize_shipping_and_cloning_refuse_staff_of_another_org(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    config = lottery_config(
        [{"name": "电饭煲", "kind": "physical", "weight": 1, "stock": 5}], address_deadline_hours=24
    )
    activity = create_activity(api, op.headers, tree.city_a, config=config)
    winner = create_member(tree.city_a, name="张三")
    prize_id = int(draw(api, activity["id"], winner.headers).json()["benefit"].split(":")[1])
    given = api.post(f"/api/v1/me/prizes/{prize_id}/address", json=ADDRESS, headers=winner.headers)
    assert given.status_code == 200, given.text

    outsider = console(api, make_staff(tree.city_b, Role.OPERATOR))
    prizes = f"/console/activities/{activity['id']}/prizes"
    assert outsider.get(prizes).status_code == 404
    shipped = outsider.post(
        f"{prizes}/{prize_id}/ship",
        {"courier_company": "顺丰", "courier_no": "SF1234567"},
        form_page="/console/",
    )
    assert shipped.status_code == 404
    revealed = outsider.post(f"{prizes}/reveal", {}, form_page="/console/")
    assert revealed.status_code == 404
    cloned = outsider.post(f"/console/activities/{activity['id']}/clone", {}, form_page="/console/")
    assert cloned.headers["location"].endswith("error=error.activity.not_found")
    member = member_console(api, winner)
    assert member.get(prizes).status_code == 303
    with unit_of_work(read_only=True) as session:
        prize = session.get(Prize, prize_id)
        assert prize is not None
        assert (prize.status, prize.courier_no) == (PrizeStatus.TO_SHIP, None)
        assert session.scalar(select(func.count(Activity.id))) == 1
    assert _unmasks() == []

    mine = console(api, op)
    page = mine.get(prizes)
    assert "138****8000" in page.text
    assert "13800138000" not in page.text
    bad = mine.post(
        f"{prizes}/{prize_id}/ship",
        {"courier_company": "顺丰", "courier_no": "x"},
        form_page=prizes,
    )
    assert "请填写快递公司和运单号" in bad.text
    done = mine.post(
        f"{prizes}/{prize_id}/ship",
        {"courier_company": "顺丰", "courier_no": "SF1234567"},
        form_page=prizes,
    )
    assert done.status_code == 303
    wallet = api.get("/api/v1/me/wallet", headers=winner.headers).json()["prizes"]
    assert [(p["status"], p["courier_company"], p["courier_no"]) for p in wallet] == [
        ("shipped", "顺丰", "SF1234567")
    ]


def test_the_home_page_counts_only_the_callers_subtree(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    create_activity(api, op.headers, tree.city_a, title="广州春季抽奖")
    mine = console(api, op).get("/console/").text
    theirs = console(api, make_staff(tree.city_b, Role.OPERATOR)).get("/console/").text
    assert "广州春季抽奖" in mine
    assert "广州春季抽奖" not in theirs
    live = re.compile(
        r'id="kpi-live"><span class="kpi-label">[^<]+</span><span class="kpi-value">(\d+)'
    )
    assert [live.search(page).group(1) for page in (mine, theirs)] == ["1", "0"]  # type: ignore[union-attr]

"""Joining the union, moving and leaving: a worker applies from the H5 or the API, the
union's staff decide, and every step is audited and kept in the member's history."""

from __future__ import annotations

import threading
from contextlib import closing
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui.accounts.principal import standing_actor
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.members import decisions, joining, service
from gonghui.members.models import (
    Membership,
    MembershipRequest,
    RosterEntry,
    Transfer,
    VerificationFlag,
)
from gonghui.orgs.models import Role
from gonghui.tenancy import SYSTEM
from tests.fixtures import PASSWORD, StaffFactory, Tree, page_csrf, proof_png
from tests.members.conftest import (
    LISTED,
    NEWCOMER,
    MemberFactory,
    apply,
    sign_in_to_pages,
)


def _count(model: Any, *where: Any) -> int:
    with unit_of_work(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _actions() -> list[str]:
    with unit_of_work(read_only=True) as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_one_open_application_per_account(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member()
    first = apply(api, member.headers, tree.grassroots_a1x)
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["kind"], body["status"], body["org_name"]) == ("join", "pending", "天河软件园工会")
    assert (body["name"], body["id_number"][-4:], body["has_proof"]) == ("林*", NEWCOMER[-4:], True)
    again = apply(api, member.headers, tree.grassroots_b1)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "members.request_already_pending"
    assert _count(MembershipRequest) == 1


def test_only_grassroots_unions_open_to_applications_take_them(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member()
    refused = apply(api, member.headers, tree.district_a1)
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "members.union_not_accepting"
    found = api.get(
        "/api/v1/members/unions",
        params={"area_id": tree.city_a, "q": "软件"},
        headers=member.headers,
    )
    assert [u["code"] for u in found.json()] == ["GZ-TH-01"]
    assert _count(MembershipRequest) == 0


def test_an_id_number_on_a_roster_gets_the_generic_refusal_and_is_flagged(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    with unit_of_work() as session:
        service.add_roster_entry(
            session, actor=SYSTEM, org_id=tree.grassroots_b1, name="张三", id_number=LISTED
        )
    member = make_member()
    refused = apply(api, member.headers, tree.grassroots_a1x, LISTED)
    assert refused.status_code == 422
    verify = api.post(
        "/api/v1/members/verify", json={"name": "林新", "id_number": LISTED}, headers=member.headers
    )
    assert refused.json()["error"] == verify.json()["error"]
    assert refused.json()["error"]["code"] == "members.verification_failed"
    with unit_of_work(read_only=True) as session:
        flag = session.scalar(select(VerificationFlag))
        assert flag is not None
        assert flag.org_id == tree.grassroots_b1
        statuses = list(session.scalars(select(MembershipRequest.status)))
    assert statuses == ["refused"]
    history = api.get("/api/v1/members/me/requests", headers=member.headers).json()
    assert [(h["kind"], h["status"]) for h in history] == [("join", "refused")]
    assert _count(Membership) == 0


def test_staff_of_another_org_cannot_approve_and_a_member_cannot_call_staff_routes(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member()
    req_id = apply(api, member.headers, tree.grassroots_a1x).json()["id"]
    other = make_staff(tree.city_b, Role.OPERATOR)
    for path in (f"/api/v1/members/requests/{req_id}/approve",):
        resp = api.post(path, json={}, headers=other.headers)
        assert resp.status_code == 404
    assert api.get("/api/v1/members/requests", headers=other.headers).json()["items"] == []
    for method, path in (
        ("GET", "/api/v1/members/requests"),
        ("POST", f"/api/v1/members/requests/{req_id}/approve"),
        ("POST", f"/api/v1/members/requests/{req_id}/reject"),
        ("GET", f"/api/v1/members/requests/{req_id}/proof"),
    ):
        resp = api.request(method, path, json={"note": "x"}, headers=member.headers)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["error"]["code"] == "accounts.not_staff"
    assert _count(RosterEntry) == 0
    assert _count(MembershipRequest, MembershipRequest.status == "pending") == 1


def test_approval_makes_a_verified_member_on_the_roster_and_is_audited(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member()
    req_id = apply(api, member.headers, tree.grassroots_a1x).json()["id"]
    operator = make_staff(tree.city_a, Role.OPERATOR)
    queue = api.get(
        "/api/v1/members/requests", params={"kind": "join"}, headers=operator.headers
    ).json()
    assert [(r["id"], r["phone"]) for r in queue["items"]] == [(req_id, "139****5678")]
    proof = api.get(f"/api/v1/members/requests/{req_id}/proof", headers=operator.headers)
    assert (proof.status_code, proof.content) == (200, proof_png())
    approved = api.post(
        f"/api/v1/members/requests/{req_id}/approve",
        json={"note": "欢迎"},
        headers=operator.headers,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert (me["status"], me["org"]["id"], me["verified_via"]) == (
        "verified",
        tree.grassroots_a1x,
        "application",
    )
    again = api.post(
        f"/api/v1/members/requests/{req_id}/approve", json={}, headers=operator.headers
    )
    assert again.status_code == 409
    assert _count(RosterEntry) == 1
    actions = _actions()
    for action in (
        "members.verification_attempt",
        "members.join_apply",
        "pii.view_proof",
        "members.join_approve",
    ):
        assert action in actions


def test_rejection_shows_the_note_to_the_worker(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member()
    req_id = apply(api, member.headers, tree.grassroots_a1x).json()["id"]
    operator = make_staff(tree.grassroots_a1x, Role.OPERATOR)
    no_note = api.post(
        f"/api/v1/members/requests/{req_id}/reject", json={"note": ""}, headers=operator.headers
    )
    assert no_note.status_code == 422
    resp = api.post(
        f"/api/v1/members/requests/{req_id}/reject",
        json={"note": "请上传清晰的工作证"},
        headers=operator.headers,
    )
    assert resp.status_code == 200
    history = api.get("/api/v1/members/me/requests", headers=member.headers).json()
    assert [(h["status"], h["decision_note"]) for h in history] == [
        ("rejected", "请上传清晰的工作证")
    ]
    assert _count(RosterEntry) == 0
    assert "members.join_reject" in _actions()


def test_two_approvals_at_once_make_one_roster_entry(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member()
    req_id = apply(api, member.headers, tree.grassroots_a1x).json()["id"]
    operator = make_staff(tree.city_a, Role.OPERATOR)
    with unit_of_work(read_only=True) as session:
        actor = standing_actor(session, user_id=operator.user_id)
    assert actor is not None
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve() -> None:
        barrier.wait()
        try:
            with unit_of_work() as session:
                decisions.approve(session, actor=actor, request_id=req_id)
            outcomes.append("approved")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approved", "members.request_already_decided"]
    assert _count(RosterEntry) == 1
    assert _count(Membership) == 1
    assert _actions().count("members.join_approve") == 1


def _member_of(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> Any:
    member = make_member()
    req_id = apply(api, member.headers, tree.grassroots_a1x).json()["id"]
    operator = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.post(f"/api/v1/members/requests/{req_id}/approve", json={}, headers=operator.headers)
    assert resp.status_code == 200, resp.text
    return member, operator


def test_the_receiving_union_accepts_a_transfer_and_the_entry_moves(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member, source_operator = _member_of(api, tree, make_staff, make_member)
    asked = api.post(
        "/api/v1/members/me/transfer-requests",
        json={"to_org_id": tree.grassroots_b1, "note": "工作调动到深圳"},
        headers=member.headers,
    )
    assert asked.status_code == 201, asked.text
    req_id = asked.json()["id"]
    assert asked.json()["from_org_name"] == "天河软件园工会"
    # The union being left is not the one that decides.
    refused = api.post(
        f"/api/v1/members/requests/{req_id}/approve", json={}, headers=source_operator.headers
    )
    assert refused.status_code == 404
    receiving = make_staff(tree.grassroots_b1, Role.OPERATOR)
    queue = api.get(
        "/api/v1/members/requests", params={"kind": "transfer"}, headers=receiving.headers
    ).json()["items"]
    assert [(r["id"], r["name"]) for r in queue] == [(req_id, "林*")]
    accepted = api.post(
        f"/api/v1/members/requests/{req_id}/approve", json={}, headers=receiving.headers
    )
    assert accepted.status_code == 200, accepted.text
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert (me["status"], me["org"]["id"]) == ("verified", tree.grassroots_b1)
    with unit_of_work(read_only=True) as session:
        entry = session.scalar(select(RosterEntry))
        assert entry is not None
        assert entry.org_id == tree.grassroots_b1
        moves = [(t.from_org_id, t.to_org_id) for t in session.scalars(select(Transfer))]
    assert moves == [(tree.grassroots_a1x, tree.grassroots_b1)]
    actions = _actions()
    assert actions.count("members.transfer") == 2
    assert "members.transfer_request" in actions
    assert "members.transfer_approve" in actions


def test_leaving_ends_the_membership_and_keeps_the_history(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member, operator = _member_of(api, tree, make_staff, make_member)
    asked = api.post(
        "/api/v1/members/me/leave-requests", json={"note": "退休"}, headers=member.headers
    )
    assert asked.status_code == 201, asked.text
    done = api.post(
        f"/api/v1/members/requests/{asked.json()['id']}/approve",
        json={"note": "已办结"},
        headers=operator.headers,
    )
    assert done.status_code == 200, done.text
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert me["status"] == "left"
    hub = api.get("/api/v1/hub", headers=member.headers)
    assert hub.status_code == 403
    roster = api.get(f"/api/v1/orgs/{tree.city_a}/roster", headers=operator.headers).json()
    assert roster["items"] == []
    history = api.get("/api/v1/members/me/requests", headers=member.headers).json()
    assert [(h["kind"], h["status"], h["decision_note"]) for h in history] == [
        ("leave", "approved", "已办结"),
        ("join", "approved", None),
    ]
    assert "members.leave_approve" in _actions()
    # A member who left may not ask to leave again; they may apply to join again, and the
    # same roster entry and membership are taken up.
    again = api.post("/api/v1/members/me/leave-requests", json={}, headers=member.headers)
    assert again.status_code == 403
    rejoin = apply(api, member.headers, tree.grassroots_a1x)
    assert rejoin.status_code == 201, rejoin.text
    resp = api.post(
        f"/api/v1/members/requests/{rejoin.json()['id']}/approve", json={}, headers=operator.headers
    )
    assert resp.status_code == 200, resp.text
    assert api.get("/api/v1/members/me", headers=member.headers).json()["status"] == "verified"
    assert (_count(RosterEntry), _count(Membership)) == (1, 1)


@pytest.mark.parametrize("kind", ["transfer", "leave"])
def test_only_a_verified_member_asks_to_move_or_leave(
    api: httpx.Client, tree: Tree, make_member: MemberFactory, kind: str
) -> None:
    member = make_member()
    body = {"to_org_id": tree.grassroots_b1} if kind == "transfer" else {}
    resp = api.post(f"/api/v1/members/me/{kind}-requests", json=body, headers=member.headers)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "members.not_a_member"
    assert _count(MembershipRequest) == 0


def test_a_member_withdraws_a_pending_request_and_may_apply_again(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member, other = make_member(), make_member()
    req_id = apply(api, member.headers, tree.grassroots_a1x).json()["id"]
    # Another account cannot withdraw it.
    refused = api.post(f"/api/v1/members/me/requests/{req_id}/withdraw", headers=other.headers)
    assert refused.status_code == 404
    done = api.post(f"/api/v1/members/me/requests/{req_id}/withdraw", headers=member.headers)
    assert (done.status_code, done.json()["status"]) == (200, "withdrawn")
    assert apply(api, member.headers, tree.grassroots_b1).status_code == 201
    assert "members.join_withdraw" in _actions()


def test_a_union_closed_to_applications_is_not_found_and_takes_none(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    outsider = make_staff(tree.city_b, Role.OPERATOR)
    body = {"accepts_applications": False}
    url = f"/api/v1/orgs/{tree.grassroots_a1x}/join-settings"
    assert api.put(url, json=body, headers=outsider.headers).status_code == 404
    operator = make_staff(tree.city_a, Role.OPERATOR)
    closed = api.put(url, json=body, headers=operator.headers)
    assert (closed.status_code, closed.json()["accepts_applications"]) == (200, False)
    member = make_member()
    found = api.get(
        "/api/v1/members/unions", params={"area_id": tree.city_a}, headers=member.headers
    )
    assert found.json() == []
    refused = apply(api, member.headers, tree.grassroots_a1x)
    assert refused.json()["error"]["code"] == "members.union_not_accepting"
    assert _count(MembershipRequest) == 0
    assert "members.join_settings" in _actions()


def test_searching_for_a_union_is_limited_per_account(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member()
    params = {"area_id": tree.province, "q": "工会"}
    refused = api.get("/api/v1/members/unions", params=params, headers=member.headers)
    assert refused.status_code == 404  # a province is not an area to search within
    for _ in range(joining.SEARCHES_PER_MINUTE - 1):
        params = {"area_id": tree.city_a, "q": "工会"}
        found = api.get("/api/v1/members/unions", params=params, headers=member.headers)
        assert found.status_code == 200
    throttled = api.get("/api/v1/members/unions", params=params, headers=member.headers)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "members.union_search_throttled"


def test_a_member_asks_to_move_and_to_leave_from_the_h5_pages(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member, operator = _member_of(api, tree, make_staff, make_member)
    page = sign_in_to_pages(member.user_id)
    chooser = api.get(
        "/h5/membership/transfer",
        params={"area_id": tree.city_b, "q": "南山"},
        headers=page.headers,
    )
    assert chooser.status_code == 200
    assert "南山科技园工会" in chooser.text
    chosen = api.get(
        "/h5/membership/transfer", params={"org_code": "SZ-NS-01"}, headers=page.headers
    )
    assert "转入：南山科技园工会" in chosen.text
    asked = api.post(
        "/h5/membership/transfer",
        data={"org_id": str(tree.grassroots_b1), "note": "调动", "csrf": page.csrf},
        headers=page.headers,
    )
    assert (asked.status_code, asked.headers["location"]) == (
        303,
        "/h5/membership?done=transfer",
    )
    # One open request at a time.
    leave = api.post(
        "/h5/membership/leave", data={"note": "", "csrf": page.csrf}, headers=page.headers
    )
    assert leave.headers["location"] == (
        "/h5/membership?error=error.members.request_already_pending"
    )
    history = api.get("/h5/membership", headers=page.headers)
    assert "转会申请 · 南山科技园工会" in history.text
    assert "审核中" in history.text
    req_id = api.get("/api/v1/members/me/requests", headers=member.headers).json()[0]["id"]
    withdrawn = api.post(
        f"/h5/membership/requests/{req_id}/withdraw",
        data={"csrf": page.csrf},
        headers=page.headers,
    )
    assert withdrawn.headers["location"] == "/h5/membership?done=withdrawn"
    leave = api.post(
        "/h5/membership/leave", data={"note": "退休", "csrf": page.csrf}, headers=page.headers
    )
    assert leave.headers["location"] == "/h5/membership?done=leave"
    # Without the form's token nothing is asked.
    forged = api.post("/h5/membership/leave", data={"note": "x"}, headers=page.headers)
    assert forged.status_code == 403
    kinds = [
        (r["kind"], r["status"])
        for r in api.get("/api/v1/members/me/requests", headers=member.headers).json()
    ]
    assert kinds == [("leave", "pending"), ("transfer", "withdrawn"), ("join", "approved")]


def _console(api: httpx.Client, username: str) -> tuple[httpx.Client, str]:
    """A console sign-in over HTTP: its cookies and the forms' CSRF token."""
    client = httpx.Client(base_url=str(api.base_url))
    resp = client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "next": "/console/"},
    )
    assert resp.status_code == 303, resp.text
    page = client.get("/console/membership-requests")
    csrf = page_csrf(page.text)
    assert csrf
    return client, csrf


def test_the_console_queues_show_transfers_in_and_leaving_and_decide_them(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member, operator = _member_of(api, tree, make_staff, make_member)
    asked = api.post(
        "/api/v1/members/me/transfer-requests",
        json={"to_org_id": tree.grassroots_b1},
        headers=member.headers,
    )
    assert asked.status_code == 201
    receiving = make_staff(tree.city_b, Role.OPERATOR)
    client, csrf = _console(api, receiving.username)
    with closing(client):
        queue = client.get("/console/membership-requests", params={"kind": "transfer"})
        assert "转出单位：天河软件园工会" in queue.text
        assert "林*" in queue.text
        decided = client.post(
            f"/console/membership-requests/{asked.json()['id']}",
            data={"kind": "transfer", "decision": "approve", "note": "", "csrf": csrf},
        )
        assert "已通过" in decided.text
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert me["org"]["id"] == tree.grassroots_b1
    leave = api.post("/api/v1/members/me/leave-requests", json={}, headers=member.headers)
    # The union the member left no longer decides for them.
    client, csrf = _console(api, operator.username)
    with closing(client):
        queue = client.get("/console/membership-requests", params={"kind": "leave"})
        assert "没有待审核的申请" in queue.text
    client, csrf = _console(api, receiving.username)
    with closing(client):
        no_note = client.post(
            f"/console/membership-requests/{leave.json()['id']}",
            data={"kind": "leave", "decision": "reject", "note": " ", "csrf": csrf},
        )
        assert "驳回时请填写审核意见" in no_note.text
        client.post(
            f"/console/membership-requests/{leave.json()['id']}",
            data={"kind": "leave", "decision": "approve", "note": "已办结", "csrf": csrf},
        )
    assert api.get("/api/v1/members/me", headers=member.headers).json()["status"] == "left"

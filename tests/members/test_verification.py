"""Verification: a signed-in user matched against the roster becomes a member; failures say
why; a manual review with a proof image is approved or rejected by an operator."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gonghui import clock
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members.models import Membership, VerificationRequest
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree, proof_png, request_review
from tests.members.conftest import (
    MemberFactory,
    Uploader,
    bad_checksum,
    csv_bytes,
    id_number,
    sign_in,
    sign_in_to_pages,
)

ZHANG = id_number("44010619900307123")
NEWCOMER = id_number("44010619950505066")


@pytest.fixture
def roster(tree: Tree, make_staff: StaffFactory, upload: Uploader) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    rows = [["张三", ZHANG, "13812345678", "M1", "GZ-TH-01", "2020-01-15"]]
    assert upload(tree.city_a, csv_bytes(rows), operator.headers)["rows_ok"] == 1


def _memberships() -> list[tuple[int, int, str]]:
    with unit_of_work(read_only=True) as session:
        return [
            (m.user_id, m.org_id, m.verified_via)
            for m in session.scalars(select(Membership).order_by(Membership.id))
        ]


@pytest.mark.usefixtures("roster")
def test_member_verifies_and_profile_shows_membership(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member()
    before = api.get("/api/v1/members/me", headers=member.headers).json()
    assert (before["status"], before["org"]) == ("unverified", None)
    resp = api.post(
        "/api/v1/members/verify",
        json={"name": " 张三 ", "id_number": ZHANG},
        headers=member.headers,
    )
    assert resp.status_code == 201, resp.text
    assert (resp.json()["org_id"], resp.json()["status"]) == (tree.grassroots_a1x, "verified")
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert me["status"] == "verified"
    assert me["org"]["name"] == "天河软件园工会"
    assert [o["code"] for o in me["org_path"]] == ["GD", "GZ", "GZ-TH", "GZ-TH-01"]
    assert (me["name"], me["id_number"]) == ("张*", "440106********" + ZHANG[-4:])
    assert (me["join_date"], me["verified_via"]) == ("2020-01-15", "roster")
    assert me["verified_at"] is not None


FAILED = {
    "code": "members.verification_failed",
    "message": "the name or ID number does not match the union's roster",
    "details": None,
}


@pytest.mark.usefixtures("roster")
@pytest.mark.parametrize(
    ("name", "number"),
    [("张三", NEWCOMER), ("张四", ZHANG)],
    ids=["not_on_any_roster", "name_differs"],
)
def test_member_cannot_learn_who_is_on_the_roster(
    api: httpx.Client, make_member: MemberFactory, name: str, number: str
) -> None:
    member = make_member()
    resp = api.post(
        "/api/v1/members/verify", json={"name": name, "id_number": number}, headers=member.headers
    )
    assert (resp.status_code, resp.json()["error"]) == (422, FAILED)
    assert _memberships() == []


def test_malformed_id_number_is_refused_as_such(
    api: httpx.Client, make_member: MemberFactory
) -> None:
    member = make_member()
    body = {"name": "张三", "id_number": bad_checksum(ZHANG)}
    resp = api.post("/api/v1/members/verify", json=body, headers=member.headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "id_number.checksum")
    assert _memberships() == []


def _audited_attempts() -> list[tuple[int | None, int | None, dict[str, Any]]]:
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "members.verification_attempt")
            .order_by(AuditEntry.id)
        )
        return [(a.actor_user_id, a.org_id, a.details or {}) for a in rows]


@pytest.mark.usefixtures("roster")
def test_every_attempt_is_audited_with_the_id_number_masked(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member()
    for body in (
        {"name": "张三", "id_number": NEWCOMER},
        {"name": "张四", "id_number": ZHANG},
        {"name": "张三", "id_number": ZHANG},
    ):
        api.post("/api/v1/members/verify", json=body, headers=member.headers)
    masked_zhang = "440106********" + ZHANG[-4:]
    assert _audited_attempts() == [
        (
            member.user_id,
            None,
            {
                "outcome": "not_in_roster",
                "channel": "api",
                "id_number": "440106********" + NEWCOMER[-4:],
            },
        ),
        (
            member.user_id,
            tree.grassroots_a1x,
            {"outcome": "name_mismatch", "channel": "api", "id_number": masked_zhang},
        ),
        (
            member.user_id,
            tree.grassroots_a1x,
            {"outcome": "verified", "channel": "api", "id_number": masked_zhang},
        ),
    ]
    with unit_of_work(read_only=True) as session:
        logged = " ".join(
            json.dumps(a.details, ensure_ascii=False) for a in session.scalars(select(AuditEntry))
        )
    assert ZHANG not in logged
    assert NEWCOMER not in logged


@pytest.mark.usefixtures("roster")
def test_entry_claimed_by_another_account_goes_to_review_instead_of_moving(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    first, second = make_member(), make_member()
    body = {"name": "张三", "id_number": ZHANG}
    assert api.post("/api/v1/members/verify", json=body, headers=first.headers).status_code == 201
    resp = api.post("/api/v1/members/verify", json=body, headers=second.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "members.verification_under_review"
    assert _memberships() == [(first.user_id, tree.grassroots_a1x, "roster")]
    me = api.get("/api/v1/members/me", headers=second.headers).json()
    assert (me["status"], me["review"]["status"]) == ("unverified", "pending")
    again = api.post("/api/v1/members/verify", json=body, headers=first.headers)
    assert again.json()["error"]["code"] == "members.already_verified"

    operator = make_staff(tree.city_a, Role.OPERATOR)
    listed = api.get("/api/v1/members/verification-requests", headers=operator.headers).json()
    assert [
        (i["user_id"], i["org_id"], i["failure_code"], i["has_proof"]) for i in listed["items"]
    ] == [(second.user_id, tree.grassroots_a1x, "members.roster_entry_claimed", False)]
    request_id = listed["items"][0]["id"]
    decided = api.post(
        f"/api/v1/members/verification-requests/{request_id}/approve",
        json={"note": "本人持身份证到场核实"},
        headers=operator.headers,
    )
    assert decided.status_code == 200, decided.text
    assert _memberships() == [(second.user_id, tree.grassroots_a1x, "review")]
    with unit_of_work(read_only=True) as session:
        approved = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "members.review_approve")
        ).one()
    assert approved.details == {
        "user_id": second.user_id,
        "failure_code": "members.roster_entry_claimed",
        "moved_from_user_id": first.user_id,
    }
    gone = api.get("/api/v1/members/me", headers=sign_in(first.user_id)).json()
    assert gone["status"] == "unverified"


def test_manual_review_approved_creates_entry_and_membership(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member()
    resp = request_review(api, member.headers, tree.grassroots_a1x, "刘新", NEWCOMER)
    assert resp.status_code == 201, resp.text
    req = resp.json()
    assert (req["status"], req["failure_code"], req["has_proof"]) == (
        "pending",
        "members.verification_failed",
        True,
    )
    assert req["name"] == "刘*"
    again = request_review(api, member.headers, tree.grassroots_a1x, "刘新", NEWCOMER)
    assert again.json()["error"]["code"] == "members.review_already_pending"

    operator_b = make_staff(tree.city_b, Role.OPERATOR)
    listed_b = api.get("/api/v1/members/verification-requests", headers=operator_b.headers).json()
    assert listed_b["items"] == []
    assert (
        api.post(
            f"/api/v1/members/verification-requests/{req['id']}/approve",
            json={},
            headers=operator_b.headers,
        ).status_code
        == 404
    )
    operator = make_staff(tree.city_a, Role.OPERATOR)
    listed = api.get("/api/v1/members/verification-requests", headers=operator.headers).json()
    assert [i["id"] for i in listed["items"]] == [req["id"]]
    proof = api.get(
        f"/api/v1/members/verification-requests/{req['id']}/proof", headers=operator.headers
    )
    assert (proof.status_code, proof.headers["content-type"]) == (200, "image/png")
    assert proof.content == proof_png()

    decided = api.post(
        f"/api/v1/members/verification-requests/{req['id']}/approve",
        json={"note": "核对会员证无误"},
        headers=operator.headers,
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decided_by"]) == (
        "approved",
        operator.user_id,
    )
    assert _memberships() == [(member.user_id, tree.grassroots_a1x, "review")]
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert (me["status"], me["org"]["id"], me["name"]) == ("verified", tree.grassroots_a1x, "刘*")
    assert me["review"]["status"] == "approved"
    # Deciding twice is refused.
    twice = api.post(
        f"/api/v1/members/verification-requests/{req['id']}/reject",
        json={"note": "x"},
        headers=operator.headers,
    )
    assert twice.json()["error"]["code"] == "members.review_already_decided"
    with unit_of_work(read_only=True) as session:
        actions = list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.subject_type == "verification_request")
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["pii.view_proof", "members.review_approve"]


@pytest.mark.usefixtures("roster")
def test_manual_review_rejected_makes_no_member(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member()
    req = request_review(api, member.headers, tree.grassroots_a1x, "张四", ZHANG).json()
    assert req["failure_code"] == "members.verification_failed"
    operator = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.post(
        f"/api/v1/members/verification-requests/{req['id']}/reject",
        json={"note": "姓名与花名册不符"},
        headers=operator.headers,
    )
    assert resp.status_code == 200
    assert (resp.json()["status"], resp.json()["decision_note"]) == ("rejected", "姓名与花名册不符")
    assert _memberships() == []
    me = api.get("/api/v1/members/me", headers=member.headers).json()
    assert (me["status"], me["review"]["status"]) == ("unverified", "rejected")
    with unit_of_work(read_only=True) as session:
        rejected = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "members.review_reject")
        ).all()
    assert [(a.actor_user_id, a.reason) for a in rejected] == [
        (operator.user_id, "姓名与花名册不符")
    ]


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (b"this is not an image, only text pretending to be one", "card.png"),
        (b"GIF89a" + b"\x00" * 40, "card.gif"),
    ],
)
def test_proof_that_is_not_a_jpeg_png_or_webp_is_refused(
    api: httpx.Client, tree: Tree, make_member: MemberFactory, content: bytes, filename: str
) -> None:
    member = make_member()
    resp = api.post(
        "/api/v1/members/verification-requests",
        data={"name": "刘新", "id_number": NEWCOMER, "org_id": str(tree.city_a)},
        files={"proof": (filename, content, "image/png")},
        headers=member.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "members.proof_not_an_image"
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(VerificationRequest)) == 0


@pytest.mark.usefixtures("roster")
def test_failed_attempts_are_limited_per_day(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    # The failures happen "yesterday" (tokens cannot be issued in the future).
    clock.advance(timedelta(days=-1))
    member = make_member()
    wrong = {"name": "张四", "id_number": ZHANG}
    for _ in range(10):
        resp = api.post("/api/v1/members/verify", json=wrong, headers=member.headers)
        assert resp.json()["error"]["code"] == "members.verification_failed"
    right = {"name": "张三", "id_number": ZHANG}
    throttled = api.post("/api/v1/members/verify", json=right, headers=member.headers)
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "members.verification_throttled"
    assert int(throttled.headers["Retry-After"]) > 0
    assert _memberships() == []
    clock.reset()  # the next day
    resp = api.post("/api/v1/members/verify", json=right, headers=sign_in(member.user_id))
    assert resp.status_code == 201, resp.text
    assert _memberships() == [(member.user_id, tree.grassroots_a1x, "roster")]


@pytest.mark.usefixtures("roster")
def test_h5_verification_counts_against_the_same_daily_limit(
    api: httpx.Client, make_member: MemberFactory
) -> None:
    member = make_member()
    page = sign_in_to_pages(member.user_id)
    wrong = {"name": "张四", "id_number": ZHANG, "csrf": page.csrf}
    for _ in range(10):
        resp = api.post("/h5/verify", data=wrong, headers=page.headers)
        assert resp.status_code == 200
        assert "姓名或身份证号与会员名册不符" in resp.text
    right = {"name": "张三", "id_number": ZHANG, "csrf": page.csrf}
    refused = api.post("/h5/verify", data=right, headers=page.headers)
    assert (refused.status_code, "尝试次数过多，请稍后再试" in refused.text) == (200, True)
    api_refused = api.post(
        "/api/v1/members/verify", json={"name": "张三", "id_number": ZHANG}, headers=member.headers
    )
    assert api_refused.status_code == 429
    assert _memberships() == []
    assert [d["outcome"] for _, _, d in _audited_attempts()] == ["name_mismatch"] * 10 + [
        "throttled"
    ] * 2
    assert {d["channel"] for _, _, d in _audited_attempts()} == {"h5", "api"}


@pytest.mark.usefixtures("roster")
def test_review_requests_cannot_probe_the_roster(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    outsider, wrong_name = make_member(), make_member()
    a = request_review(api, outsider.headers, tree.grassroots_a1x, "张三", NEWCOMER)
    b = request_review(api, wrong_name.headers, tree.grassroots_a1x, "张四", ZHANG)
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["failure_code"] == b.json()["failure_code"] == "members.verification_failed"


@pytest.mark.usefixtures("roster")
def test_review_request_counts_against_the_verification_limit(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    member = make_member()
    for _ in range(10):
        api.post(
            "/api/v1/members/verify",
            json={"name": "张四", "id_number": ZHANG},
            headers=member.headers,
        )
    resp = request_review(api, member.headers, tree.grassroots_a1x, "张四", ZHANG)
    assert resp.status_code == 429
    assert resp.json()["error"]["code"] == "members.verification_throttled"
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(VerificationRequest)) == 0


@pytest.mark.usefixtures("roster")
def test_id_number_tried_from_three_accounts_is_locked_and_flagged_to_its_union(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    probers = [make_member() for _ in range(3)]
    wrong = {"name": "李四", "id_number": ZHANG}
    for prober in probers[:2]:
        resp = api.post("/api/v1/members/verify", json=wrong, headers=prober.headers)
        assert resp.json()["error"]["code"] == "members.verification_failed"
    third = api.post("/api/v1/members/verify", json=wrong, headers=probers[2].headers)
    assert third.status_code == 429
    assert third.json()["error"]["code"] == "members.verification_locked"
    assert int(third.headers["Retry-After"]) > 0
    # Locked for everyone, even with the right name.
    owner = make_member()
    right = {"name": "张三", "id_number": ZHANG}
    locked = api.post("/api/v1/members/verify", json=right, headers=owner.headers)
    assert locked.json()["error"]["code"] == "members.verification_locked"
    assert _memberships() == []

    operator_b = make_staff(tree.city_b, Role.OPERATOR)
    assert api.get("/api/v1/members/verification-flags", headers=operator_b.headers).json() == []
    operator = make_staff(tree.city_a, Role.OPERATOR)
    flags = api.get("/api/v1/members/verification-flags", headers=operator.headers).json()
    assert [(f["org_id"], f["id_number"], f["accounts"]) for f in flags] == [
        (tree.grassroots_a1x, "440106********" + ZHANG[-4:], 3)
    ]
    refused = api.post(
        f"/api/v1/members/verification-flags/{flags[0]['id']}/resolve", headers=operator_b.headers
    )
    assert refused.status_code == 404
    resolved = api.post(
        f"/api/v1/members/verification-flags/{flags[0]['id']}/resolve", headers=operator.headers
    )
    assert resolved.status_code == 200, resolved.text
    assert api.get("/api/v1/members/verification-flags", headers=operator.headers).json() == []
    ok = api.post("/api/v1/members/verify", json=right, headers=owner.headers)
    assert ok.status_code == 201, ok.text
    assert _memberships() == [(owner.user_id, tree.grassroots_a1x, "roster")]


@pytest.mark.usefixtures("roster")
def test_h5_member_claiming_a_verified_entry_is_told_it_went_to_review(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    first, second = make_member(), make_member()
    body = {"name": "张三", "id_number": ZHANG}
    assert api.post("/api/v1/members/verify", json=body, headers=first.headers).status_code == 201
    page = sign_in_to_pages(second.user_id)
    resp = api.post("/h5/verify", data={**body, "csrf": page.csrf}, headers=page.headers)
    assert (resp.status_code, resp.headers["location"]) == (303, "/h5/verify?requested=1")
    shown = api.get("/h5/verify?requested=1", headers=page.headers)
    assert "审核中" in shown.text
    assert _memberships() == [(first.user_id, tree.grassroots_a1x, "roster")]

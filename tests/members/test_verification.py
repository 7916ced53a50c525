"""Verification: a signed-in user matched against the roster becomes a member; failures say
why; a manual review with a proof image is approved or rejected by an operator."""

from __future__ import annotations

import io
from datetime import timedelta

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from gonghui import clock
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.members.models import Membership, VerificationRequest
from gonghui.orgs.models import Role
from tests.fixtures import StaffFactory, Tree
from tests.members.conftest import (
    MemberFactory,
    Uploader,
    bad_checksum,
    csv_bytes,
    id_number,
    sign_in,
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


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 10), (20, 120, 200)).save(out, format="PNG")
    return out.getvalue()


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


@pytest.mark.usefixtures("roster")
@pytest.mark.parametrize(
    ("name", "number", "status", "code"),
    [
        ("张三", NEWCOMER, 404, "members.not_in_roster"),
        ("张四", ZHANG, 422, "members.name_mismatch"),
        ("张三", bad_checksum(ZHANG), 422, "id_number.checksum"),
    ],
)
def test_mismatch_says_why_and_makes_no_member(
    api: httpx.Client, make_member: MemberFactory, name: str, number: str, status: int, code: str
) -> None:
    member = make_member()
    resp = api.post(
        "/api/v1/members/verify", json={"name": name, "id_number": number}, headers=member.headers
    )
    assert resp.status_code == status
    assert resp.json()["error"]["code"] == code
    assert _memberships() == []


@pytest.mark.usefixtures("roster")
def test_entry_claimed_by_another_account_is_refused(
    api: httpx.Client, tree: Tree, make_member: MemberFactory
) -> None:
    first, second = make_member(), make_member()
    body = {"name": "张三", "id_number": ZHANG}
    assert api.post("/api/v1/members/verify", json=body, headers=first.headers).status_code == 201
    resp = api.post("/api/v1/members/verify", json=body, headers=second.headers)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "members.roster_entry_claimed"
    again = api.post("/api/v1/members/verify", json=body, headers=first.headers)
    assert again.json()["error"]["code"] == "members.already_verified"
    assert _memberships() == [(first.user_id, tree.grassroots_a1x, "roster")]


def _request_review(
    api: httpx.Client, member_headers: dict[str, str], org_id: int, name: str, number: str
) -> httpx.Response:
    return api.post(
        "/api/v1/members/verification-requests",
        data={"name": name, "id_number": number, "org_id": str(org_id), "note": "新入职"},
        files={"proof": ("会员证.png", _png(), "image/png")},
        headers=member_headers,
    )


def test_manual_review_approved_creates_entry_and_membership(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    member = make_member()
    resp = _request_review(api, member.headers, tree.grassroots_a1x, "刘新", NEWCOMER)
    assert resp.status_code == 201, resp.text
    req = resp.json()
    assert (req["status"], req["failure_code"], req["has_proof"]) == (
        "pending",
        "members.not_in_roster",
        True,
    )
    assert req["name"] == "刘*"
    again = _request_review(api, member.headers, tree.grassroots_a1x, "刘新", NEWCOMER)
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
    assert proof.content == _png()

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
    req = _request_review(api, member.headers, tree.grassroots_a1x, "张四", ZHANG).json()
    assert req["failure_code"] == "members.name_mismatch"
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
        assert resp.json()["error"]["code"] == "members.name_mismatch"
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

"""Helpers for the members tests: signed-in members, roster files, imports."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gonghui import tasks
from gonghui.accounts.models import User
from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.members.idnumber import check_character
from gonghui.web.session import ACCESS_COOKIE, csrf_token_for
from tests.fixtures import proof_png

HEADER = ["姓名", "身份证号", "手机号", "会员号", "工会编码", "入会日期"]


def id_number(first17: str) -> str:
    return first17 + check_character(first17)


def bad_checksum(number: str) -> str:
    wrong = "0" if number[-1] != "0" else "1"
    return number[:-1] + wrong


def x_number() -> str:
    """A valid number whose check character is X."""
    for seq in range(1000):
        first17 = f"44010619900101{seq:03d}"
        if check_character(first17) == "X":
            return first17 + "X"
    raise AssertionError("no X number found")


def csv_bytes(
    rows: list[list[str]], *, encoding: str = "utf-8", header: list[str] | None = None
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


@dataclass(frozen=True)
class Member:
    user_id: int
    headers: dict[str, str]


MemberFactory = Callable[[], Member]


def sign_in(user_id: int) -> dict[str, str]:
    """Fresh bearer headers for an existing user (after the clock moved past expiry)."""
    with unit_of_work() as session:
        user = session.get(User, user_id)
        assert user is not None
        pair = start_session(session, user=user, channel="h5")
    return {"Authorization": f"Bearer {pair.access_token}"}


@dataclass(frozen=True)
class PageMember:
    """A user signed in to the H5 pages: their cookies and their forms' CSRF token."""

    user_id: int
    headers: dict[str, str]  # the access cookie
    csrf: str


def sign_in_to_pages(user_id: int) -> PageMember:
    with unit_of_work() as session:
        user = session.get(User, user_id)
        assert user is not None
        pair = start_session(session, user=user, channel="h5")
    cookie = {"Cookie": f"{ACCESS_COOKIE}={pair.access_token}"}
    return PageMember(user_id, cookie, csrf_token_for(pair.session_id))


@pytest.fixture
def make_member() -> MemberFactory:
    """A signed-in user with no staff role (signs in through the token service)."""

    def make() -> Member:
        with unit_of_work() as session:
            user = create_user(session, display_name="member")
            pair = start_session(session, user=user, channel="h5")
        return Member(pair.user_id, {"Authorization": f"Bearer {pair.access_token}"})

    return make


Uploader = Callable[..., dict[str, Any]]


@pytest.fixture
def upload(api: httpx.Client) -> Uploader:
    """Upload a roster over HTTP, wait for its background import, return the finished job."""

    def run(
        org_id: int, data: bytes, headers: dict[str, str], filename: str = "roster.csv"
    ) -> dict[str, Any]:
        resp = api.post(
            f"/api/v1/orgs/{org_id}/roster/imports",
            files={"file": (filename, data, "text/csv")},
            headers=headers,
        )
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        tasks.run_due()
        job = api.get(f"/api/v1/roster/imports/{job_id}", headers=headers)
        assert job.status_code == 200, job.text
        result: dict[str, Any] = job.json()
        return result

    return run


def report_rows(
    api: httpx.Client, job_id: int, headers: dict[str, str]
) -> list[tuple[int, str, str]]:
    # A store with presigned URLs redirects to the bucket (the Authorization header is not
    # sent on to another origin).
    resp = api.get(
        f"/api/v1/roster/imports/{job_id}/errors", headers=headers, follow_redirects=True
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert lines[0] == ["row", "field", "code", "reason"]
    assert all(line[3] for line in lines[1:])  # every bad row says why
    return [(int(r), f, c) for r, f, c, _ in lines[1:]]


NEWCOMER = id_number("44010619950505066")
LISTED = id_number("44010619900307123")


def apply(
    api: httpx.Client, headers: dict[str, str], org_id: int, number: str = NEWCOMER
) -> httpx.Response:
    return api.post(
        "/api/v1/members/applications",
        data={
            "org_id": str(org_id),
            "name": "林新",
            "id_number": number,
            "phone": "13912345678",
            "employer": "天河软件园某科技公司",
            "job": "测试工程师",
        },
        files={"proof": ("工作证.png", proof_png(), "image/png")},
        headers=headers,
    )

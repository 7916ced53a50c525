"""Members and activities built through the services, as the real flows build them."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import clock, hotwrite
from gonghui.accounts.access import issue_access_token
from gonghui.accounts.models import SessionKind
from gonghui.accounts.principal import MemberInfo, load
from gonghui.accounts.service import create_user, get_user
from gonghui.accounts.tokens import start_session
from gonghui.activities.quiz.models import Question
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.idempotency import IdempotentResponse
from gonghui.members import service as members
from gonghui.members.idnumber import check_character
from gonghui.tenancy import SYSTEM
from gonghui.web.session import ACCESS_COOKIE
from tests.fixtures import Staff

_numbers = itertools.count(1)


def id_number(n: int) -> str:
    """A valid resident ID number, distinct for each ``n`` below 1,000,000."""
    first17 = f"110101{1950 + n // 1000:04d}0101{n % 1000:03d}"
    return first17 + check_character(first17)


@dataclass(frozen=True)
class Member:
    user_id: int
    membership_id: int
    name: str
    session_id: str

    @property
    def headers(self) -> dict[str, str]:
        """A bearer token minted now, so it stays valid after ``clock.advance``."""
        token = issue_access_token(user_id=self.user_id, session_id=self.session_id)
        return {"Authorization": f"Bearer {token}"}


def h5_get(api: httpx.Client, member: Member, path: str) -> httpx.Response:
    """``path`` of the H5 as ``member`` sees it (their page sign-in, a cookie)."""
    with httpx.Client(base_url=str(api.base_url)) as browser:
        token = issue_access_token(user_id=member.user_id, session_id=member.session_id)
        browser.cookies.set(ACCESS_COOKIE, token, domain="127.0.0.1")
        return browser.get(path)


def staff_headers(staff: Staff) -> dict[str, str]:
    """Fresh headers for a staff member (their first token expires when the clock moves)."""
    with unit_of_work() as session:
        user = get_user(session, user_id=staff.user_id)
        assert user is not None
        tokens = start_session(session, user=user, kind=SessionKind.STAFF)
    return {"Authorization": f"Bearer {tokens.access_token}"}


MemberFactory = Callable[..., Member]


def create_member(
    org_id: int,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    join_date: date | None = None,
) -> Member:
    n = next(_numbers)
    name = name or f"会员{n}号"
    with unit_of_work() as session:
        user = create_user(session, display_name=name)
        members.add_roster_entry(
            session,
            actor=SYSTEM,
            org_id=org_id,
            name=name,
            id_number=id_number(n),
            join_date=join_date,
        )
        membership = members.verify(session, user_id=user.id, name=name, id_number=id_number(n))
        if tags:
            membership.tags = tags
        tokens = start_session(session, user=user)
        return Member(
            user_id=user.id,
            membership_id=membership.id,
            name=name,
            session_id=tokens.session_id,
        )


@pytest.fixture
def make_member() -> MemberFactory:
    """A verified member of ``org_id`` with a signed-in session (``headers``)."""
    return create_member


def window(hours_from_now: float = 0, length_hours: float = 24 * 7) -> dict[str, str]:
    start = clock.now() + timedelta(hours=hours_from_now)
    return {
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=length_hours)).isoformat(),
    }


def lottery_config(prizes: list[dict[str, Any]] | None = None, **rules: Any) -> dict[str, Any]:
    return {
        "kind": "lottery",
        "lottery": {
            "prizes": prizes
            or [
                {"name": "十元券", "kind": "voucher", "weight": 1, "stock": 5, "value": 1000},
                {"name": "谢谢参与", "kind": "none", "weight": 1},
            ],
            **rules,
        },
    }


def create_activity(
    api: httpx.Client,
    headers: dict[str, str],
    org_id: int,
    *,
    publish: bool = True,
    config: dict[str, Any] | None = None,
    starts_in_hours: float = 0,
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "org_id": org_id,
        "title": fields.pop("title", "十一月抽奖"),
        "config": config or lottery_config(),
        **window(starts_in_hours),
        **fields,
    }
    resp = api.post("/api/v1/activities", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    activity: dict[str, Any] = resp.json()
    if publish:
        resp = api.post(f"/api/v1/activities/{activity['id']}/publish", headers=headers)
        assert resp.status_code == 200, resp.text
        activity = resp.json()
    return activity


def draw(
    api: httpx.Client, activity_id: int, headers: dict[str, str], **extra: str
) -> httpx.Response:
    """A member draws once in a lottery (``extra`` headers, e.g. an idempotency key)."""
    return api.post(
        f"/api/v1/activities/{activity_id}/draws",
        json={"entropy": "abc"},
        headers={**headers, **extra},
    )


def quiz_config(**rules: Any) -> dict[str, Any]:
    return {
        "kind": "quiz",
        "quiz": {
            "question_count": 3,
            "time_limit_s": 60,
            "pass_score": 60,
            "reward": {"type": "points", "points": 20},
            **rules,
        },
    }


def quiz_lottery_config(
    prize: str = "二十元券", stock: int = 1, value: int = 2000
) -> dict[str, Any]:
    """Pass a 3-question quiz with full marks to earn the one draw; the prize always wins."""
    return {
        "kind": "quiz_lottery",
        "quiz": {
            "question_count": 3,
            "time_limit_s": 120,
            "pass_score": 100,
            "reward": {"type": "chances", "chances": 1},
        },
        "lottery": {
            "prizes": [
                {"name": prize, "kind": "voucher", "weight": 1, "stock": stock, "value": value}
            ],
            "free_draws_per_day": 0,
        },
    }


def add_questions(api: httpx.Client, headers: dict[str, str], org_id: int, n: int = 4) -> None:
    for i in range(n):
        resp = api.post(
            f"/api/v1/orgs/{org_id}/questions",
            json={
                "kind": "single",
                "text": f"第{i}题",
                "options": ["甲", "乙", "丙"],
                "answer": [i % 3],
                "explanation": f"答案是{'甲乙丙'[i % 3]}",
            },
            headers=headers,
        )
        assert resp.status_code == 201, resp.text


def answers_for(attempt: dict[str, Any], *, wrong: int = 0) -> dict[str, list[int]]:
    with unit_of_work() as session:
        right = {q.id: q.answer for q in session.query(Question)}
    answers = {}
    for n, q in enumerate(attempt["questions"]):
        answer = right[q["id"]]
        answers[str(q["id"])] = [(answer[0] + 1) % 3] if n < wrong else answer
    return answers


def member_info(session: Session, member: Member) -> MemberInfo:
    """The member as a hot operation gets them (the signed-in principal's member)."""
    info = load(session, user_id=member.user_id, session_id=member.session_id).member
    assert info is not None
    return info


def stored_keys(session: Session) -> list[tuple[int, str, str, bool]]:
    """Every idempotency key kept: (member, key, operation, whether its answer is stored)."""
    rows = session.execute(
        select(
            IdempotentResponse.membership_id,
            IdempotentResponse.key,
            IdempotentResponse.operation,
            IdempotentResponse.body,
        )
    )
    return sorted((m, k, op, body is not None) for m, k, op, body in rows)


def one_by_one(session: Session, op: Callable[..., Any], calls: list[dict[str, Any]]) -> list[Any]:
    """Each call of a batched hot operation alone, in its own savepoint (as the writer runs
    a job alone), in the order a batch promises: a member's n-th call in the n-th round.
    Each call's answer, or the DomainError that refused it."""
    rounds = hotwrite.rounds(list(enumerate(calls)), lambda c: c[1]["member"].membership_id)
    outcomes: list[Any] = [None] * len(calls)
    for index, call in (c for round_ in rounds for c in round_):
        try:
            with session.begin_nested():
                outcomes[index] = op(session, **call)
        except DomainError as exc:
            outcomes[index] = exc
    return outcomes

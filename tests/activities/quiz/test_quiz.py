"""Quizzes: the question bank, attempts under a server clock, rewards, the leaderboard."""

from __future__ import annotations

import io
import tracemalloc
from datetime import timedelta
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from gonghui import clock
from gonghui.accounts.access import issue_access_token
from gonghui.activities.quiz import bank
from gonghui.errors import InvalidInput
from gonghui.orgs.models import Role
from gonghui.web.session import ACCESS_COOKIE, csrf_token_for
from tests.activities.conftest import (
    Member,
    MemberFactory,
    add_questions,
    answers_for,
    create_activity,
    lottery_config,
    quiz_config,
    window,
)
from tests.fixtures import StaffFactory, Tree, xlsx_with_blank_rows


def _start(api: httpx.Client, activity_id: int, member: Member) -> httpx.Response:
    return api.post(f"/api/v1/activities/{activity_id}/quiz/attempts", headers=member.headers)


def _submit(
    api: httpx.Client, attempt: dict[str, Any], member: Member, answers: dict[str, Any], **h: str
) -> httpx.Response:
    return api.post(
        f"/api/v1/quiz/attempts/{attempt['attempt_id']}/submit",
        json={"answers": answers},
        headers={**member.headers, **h},
    )


def test_bad_question_is_refused_with_the_field(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/questions",
        json={"kind": "single", "text": "?", "options": ["a", "b"], "answer": [0, 1]},
        headers=op.headers,
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "request.invalid"
    assert api.get(f"/api/v1/orgs/{tree.city_a}/questions", headers=op.headers).json() == []
    other = make_staff(tree.city_b, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a, 1)
    assert (
        api.get(f"/api/v1/orgs/{tree.city_a}/questions", headers=other.headers).status_code == 404
    )


def _workbook(rows: list[list[str]]) -> bytes:
    wb = Workbook()
    sheet = wb.active
    sheet.append(["题型", "题目", "选项", "答案", "解析", "标签"])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_xlsx_import_is_all_or_nothing(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    url = f"/api/v1/orgs/{tree.city_a}/questions/import"
    good = [
        ["单选", "工会法哪年颁布?", "1950|1992|2001", "B", "1992年", "法律"],
        ["多选", "哪些是会员权利?", "选举权|被选举权|罚款权", "AB", "", "法律"],
        ["判断", "会员可以自愿退会。", "", "对", "", ""],
    ]
    bad = [*good, ["单选", "缺答案", "甲|乙", "", "", ""], ["填空", "x", "a|b", "A", "", ""]]
    resp = api.post(url, files={"file": ("q.xlsx", _workbook(bad))}, headers=op.headers)
    assert resp.status_code == 422
    assert [d["field"] for d in resp.json()["error"]["details"]] == ["row 5", "row 6"]
    assert api.get(f"/api/v1/orgs/{tree.city_a}/questions", headers=op.headers).json() == []

    resp = api.post(url, files={"file": ("q.xlsx", _workbook(good))}, headers=op.headers)
    assert resp.status_code == 201
    assert resp.json() == {"created": 3}
    questions = api.get(f"/api/v1/orgs/{tree.city_a}/questions", headers=op.headers).json()
    assert [(q["kind"], q["answer"], q["tag"]) for q in questions] == [
        ("single", [1], "法律"),
        ("multiple", [0, 1], "法律"),
        ("true_false", [0], None),
    ]
    assert questions[2]["options"] == ["对", "错"]


def test_a_sheet_of_a_million_blank_rows_is_refused_at_the_row_cap(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    bomb = xlsx_with_blank_rows(["题型", "题目", "选项", "答案"], 1_000_000)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/questions/import",
        files={"file": ("q.xlsx", bomb)},
        headers=op.headers,
    )
    message = "the sheet has more than 5000 rows (blank rows count)"
    assert resp.status_code == 422
    assert resp.json()["error"] == {
        "code": "quiz.bad_import",
        "message": message,
        "details": [{"field": "file", "code": "quiz.bad_import", "message": message}],
    }
    assert api.get(f"/api/v1/orgs/{tree.city_a}/questions", headers=op.headers).json() == []


def test_a_blank_row_bomb_is_refused_in_little_memory_and_without_a_session() -> None:
    bomb = xlsx_with_blank_rows(["kind", "text"], 1_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as refused:
            bank.parse_xlsx(io.BytesIO(bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.code == "quiz.bad_import"
    assert peak < 32 * 1024 * 1024


def test_pass_earns_points_answers_stay_hidden_until_submit(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    activity = create_activity(api, op.headers, tree.city_a, config=quiz_config())
    member = make_member(tree.city_a)
    started = _start(api, activity["id"], member)
    assert started.status_code == 201
    attempt = started.json()
    assert len(attempt["questions"]) == 3
    assert all(set(q) == {"id", "kind", "text", "options"} for q in attempt["questions"])

    clock.advance(timedelta(seconds=30))
    done = _submit(api, attempt, member, answers_for(attempt, wrong=1), **{"Idempotency-Key": "s1"})
    assert done.status_code == 200
    result = done.json()
    assert (result["score"], result["correct"], result["passed"]) == (66, 2, True)
    assert result["reward"] == "points:20"
    assert result["duration_ms"] >= 30_000
    assert all(r["explanation"].startswith("答案是") for r in result["results"])
    retry = _submit(api, attempt, member, {}, **{"Idempotency-Key": "s1"})
    assert retry.json() == result
    again = _submit(api, attempt, member, answers_for(attempt))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "quiz.already_submitted"
    assert api.get("/api/v1/me/wallet", headers=member.headers).json()["points"] == 20


def test_time_limit_is_enforced_by_the_server(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    activity = create_activity(api, op.headers, tree.city_a, config=quiz_config())
    member = make_member(tree.city_a)
    attempt = _start(api, activity["id"], member).json()
    clock.advance(timedelta(seconds=63))
    result = _submit(api, attempt, member, answers_for(attempt)).json()
    assert (result["timed_out"], result["score"], result["passed"], result["reward"]) == (
        True,
        0,
        False,
        None,
    )
    assert result["duration_ms"] == 60_000
    assert api.get("/api/v1/me/wallet", headers=member.headers).json()["points"] == 0


def test_attempts_per_day(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    activity = create_activity(api, op.headers, tree.city_a, config=quiz_config(attempts_per_day=1))
    member = make_member(tree.city_a)
    assert _start(api, activity["id"], member).status_code == 201
    second = _start(api, activity["id"], member)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "quiz.no_attempts_left_today"
    clock.advance(timedelta(days=1))
    assert _start(api, activity["id"], member).status_code == 201


def test_too_small_bank_is_refused(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a, 2)
    activity = create_activity(api, op.headers, tree.city_a, config=quiz_config())
    resp = _start(api, activity["id"], make_member(tree.city_a))
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "quiz.not_enough_questions"


def test_passing_earns_chances_in_the_linked_lottery(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    lottery = create_activity(
        api, op.headers, tree.city_a, config=lottery_config(free_draws_per_day=0)
    )
    quiz = create_activity(
        api,
        op.headers,
        tree.city_a,
        config=quiz_config(
            reward={"type": "chances", "chances": 2, "lottery_activity_id": lottery["id"]}
        ),
    )
    member = make_member(tree.city_a)
    draw_url = f"/api/v1/activities/{lottery['id']}/draws"
    assert api.post(draw_url, headers=member.headers).json()["error"]["code"] == (
        "lottery.no_chances"
    )
    attempt = _start(api, quiz["id"], member).json()
    result = _submit(api, attempt, member, answers_for(attempt)).json()
    assert result["reward"] == f"chances:2@{lottery['id']}"
    first = api.post(draw_url, headers=member.headers).json()
    assert first["chances_left"] == 1
    assert api.post(draw_url, headers=member.headers).status_code == 200
    assert api.post(draw_url, headers=member.headers).status_code == 409


def test_leaderboard_orders_by_score_then_speed_with_own_rank(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    activity = create_activity(api, op.headers, tree.city_a, config=quiz_config())
    slow_perfect = make_member(tree.city_a, name="王小明")
    fast_perfect = make_member(tree.city_a, name="李四")
    fast_partial = make_member(tree.city_a, name="张三丰")
    plans = [(slow_perfect, 20, 0), (fast_perfect, 5, 0), (fast_partial, 1, 1)]
    for member, seconds, wrong in plans:
        attempt = _start(api, activity["id"], member).json()
        clock.advance(timedelta(seconds=seconds))
        _submit(api, attempt, member, answers_for(attempt, wrong=wrong))
    board = api.get(
        f"/api/v1/activities/{activity['id']}/quiz/leaderboard", headers=fast_partial.headers
    ).json()
    assert [(e["rank"], e["name"], e["score"]) for e in board["top"]] == [
        (1, "李*", 100),
        (2, "王*明", 100),
        (3, "张*丰", 66),
    ]
    assert board["me"]["rank"] == 3
    outsider = make_member(tree.city_a)
    assert (
        api.get(
            f"/api/v1/activities/{activity['id']}/quiz/leaderboard", headers=outsider.headers
        ).json()["me"]
        is None
    )


def test_chances_must_go_to_a_lottery_the_operator_manages(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    op_a = make_staff(tree.city_a, Role.OPERATOR)
    op_b = make_staff(tree.city_b, Role.OPERATOR)
    lottery_b = create_activity(api, op_b.headers, tree.city_b, config=lottery_config())
    quiz_a = create_activity(api, op_a.headers, tree.city_a, config=quiz_config(), publish=False)

    def create(reward: dict[str, Any]) -> httpx.Response:
        return api.post(
            "/api/v1/activities",
            json={
                "org_id": tree.city_a,
                "title": "答题",
                "config": quiz_config(reward=reward),
                **window(),
            },
            headers=op_a.headers,
        )

    for target in (lottery_b["id"], quiz_a["id"]):
        resp = create({"type": "chances", "chances": 1, "lottery_activity_id": target})
        assert resp.status_code == 422
        assert resp.json()["error"]["details"] == [
            {
                "field": "config.quiz.reward.lottery_activity_id",
                "code": "activities.bad_config",
                "message": "not a lottery you manage",
            }
        ]
    missing = create({"type": "chances", "chances": 1})
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["field"] == "config.quiz"
    assert [a["id"] for a in api.get("/api/v1/activities", headers=op_a.headers).json()] == [
        quiz_a["id"]
    ]


def test_a_quiz_page_form_with_numbers_out_of_range_is_answered_not_crashed(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    add_questions(api, op.headers, tree.city_a)
    activity = create_activity(api, op.headers, tree.city_a, config=quiz_config())
    member = make_member(tree.city_a)
    attempt = _start(api, activity["id"], member).json()
    token = issue_access_token(user_id=member.user_id, session_id=member.session_id)
    page = api.post(
        f"/h5/quiz/{attempt['attempt_id']}",
        data={
            "csrf": csrf_token_for(member.session_id),
            "activity_id": "not-a-number",
            f"q_{2**70}": "0",
            f"q_{attempt['questions'][0]['id']}": str(2**70),
        },
        headers={"Cookie": f"{ACCESS_COOKIE}={token}"},
    )
    assert page.status_code == 200, page.text
    # The out-of-range answers were dropped: the attempt was submitted and scored on none.
    result = _submit(api, attempt, member, answers_for(attempt))
    assert result.status_code == 409
    assert result.json()["error"]["code"] == "quiz.already_submitted"
    assert api.get("/api/v1/me/wallet", headers=member.headers).json()["points"] == 0

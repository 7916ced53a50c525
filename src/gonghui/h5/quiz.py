"""Taking a quiz: starting an attempt and submitting the answers."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui import hotwrite, risk
from gonghui.activities.quiz import attempts
from gonghui.errors import DomainError
from gonghui.h5.access import H5Member, member_of
from gonghui.h5.hub import hub_item
from gonghui.h5.member_action import challenge_page, risk_context
from gonghui.types import Id, form_int
from gonghui.web.errors import error_key
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter()


@router.post("/activities/{activity_id}/quiz", response_class=HTMLResponse)
def start_quiz(
    request: Request,
    user: H5Member,
    activity_id: Id,
    csrf: Annotated[str, Form()] = "",
    risk_challenge: Annotated[str, Form(max_length=128)] = "",
    risk_answer: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(request, user, csrf)
    item = hub_item(user, activity_id)
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "item": item, "tab": "hub"}
    member = member_of(user)
    answered = (risk_challenge, risk_answer) if risk_challenge else None
    try:
        risk.check(
            risk.Action.QUIZ_ATTEMPT,
            member,
            risk_context(request, answered),
            activity_id=activity_id,
        )
        attempt = hotwrite.run(attempts.start_attempt, member=member, activity_id=activity_id)
    except risk.ChallengeRequired as exc:
        return challenge_page(request, exc, {"csrf": csrf})
    except DomainError as exc:
        context["error"] = error_key(exc)
        if item is not None:
            context["draw_key"] = secrets.token_urlsafe(16)
        return render(request, "h5/activity.html", context, status=404 if item is None else 200)
    context.update(attempt=attempt, submit_key=secrets.token_urlsafe(16))
    return render(request, "h5/quiz.html", context)


@router.post("/quiz/{attempt_id}", response_class=HTMLResponse)
async def submit_quiz(request: Request, user: H5Member, attempt_id: Id) -> Response:
    form = await request.form()
    check_csrf(request, user, str(form.get("csrf") or ""))
    answers: dict[int, list[int]] = {}
    for key, value in form.multi_items():
        question_id, option = form_int(key[2:]), form_int(value, least=0)
        if key.startswith("q_") and question_id is not None and option is not None:
            answers.setdefault(question_id, []).append(option)
    activity_id = form_int(form.get("activity_id")) or 0
    context: dict[str, Any] = {"csrf_token": user.csrf_token, "tab": "hub"}
    try:
        submit_key = str(form.get("submit_key") or "") or None
        result = await hotwrite.run_async(
            attempts.submit,
            member=member_of(user),
            attempt_id=attempt_id,
            answers=answers,
            idempotency_key=submit_key,
        )
    except DomainError as exc:
        context["error"] = error_key(exc)
        return render(request, "h5/quiz_result.html", context)
    context.update(result=result, activity_id=activity_id)
    return render(request, "h5/quiz_result.html", context)

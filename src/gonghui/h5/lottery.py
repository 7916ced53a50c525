"""Drawing in a lottery from its activity page."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui import risk
from gonghui.activities.lottery import draw as draws
from gonghui.h5.access import H5Member
from gonghui.h5.member_action import run_as_member
from gonghui.types import Id
from gonghui.web.session import check_csrf

router = APIRouter()


@router.post("/activities/{activity_id}/draw", response_class=HTMLResponse)
def draw(
    request: Request,
    user: H5Member,
    activity_id: Id,
    entropy: Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] = "",
    draw_key: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
    risk_challenge: Annotated[str, Form(max_length=128)] = "",
    risk_answer: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(request, user, csrf)
    return run_as_member(
        request,
        user,
        "h5/_draw_result.html",
        draws.draw,
        action=risk.Action.DRAW,
        activity_id=activity_id,
        resend={"entropy": entropy, "draw_key": draw_key, "csrf": csrf},
        challenge=(risk_challenge, risk_answer) if risk_challenge else None,
        client_entropy=entropy,
        idempotency_key=draw_key or None,
        shown=lambda result: {"result": result, "next_key": secrets.token_urlsafe(16)},
    )

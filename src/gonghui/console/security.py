"""Console: the staff member's own sign-in security (two-step sign-in with TOTP)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.accounts import totp
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.web.errors import error_key
from gonghui.web.qr import qr_svg
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/security", include_in_schema=False)


def _page(request: Request, user: PageUser, **extra: Any) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        assert actor.user_id is not None
        enabled = totp.is_enabled(session, user_id=actor.user_id)
        pending = None if enabled else totp.pending_enrolment(session, actor=actor)
    context: dict[str, Any] = {
        "active": "nav.security",
        "csrf_token": user.csrf_token,
        "enabled": enabled,
        "pending": pending,
        "qr": qr_svg(pending.otpauth_uri, scale=4) if pending else None,
    }
    context.update(extra)
    return render(request, "console/security.html", context)


@router.get("", response_class=HTMLResponse)
def security_page(request: Request, user: ConsoleStaff, done: str | None = None) -> Response:
    notice = {"enabled": "totp.enabled_now", "disabled": "totp.disabled_now"}.get(done or "")
    return _page(request, user, done=notice)


@router.post("/totp/enrol", response_class=HTMLResponse)
def enrol(request: Request, user: ConsoleStaff, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            totp.start_enrolment(session, actor=_actor(request, user))
    except DomainError as exc:
        return _page(request, user, error=error_key(exc))
    return RedirectResponse("/console/security", status_code=303)


def _with_code(request: Request, user: PageUser, csrf: str, code: str, *, enable: bool) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            if enable:
                totp.confirm_enrolment(session, actor=_actor(request, user), code=code)
            else:
                totp.disable(session, actor=_actor(request, user), code=code)
    except DomainError as exc:
        return _page(request, user, error=error_key(exc))
    done = "enabled" if enable else "disabled"
    return RedirectResponse(f"/console/security?done={done}", status_code=303)


@router.post("/totp/confirm", response_class=HTMLResponse)
def confirm(
    request: Request,
    user: ConsoleStaff,
    code: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return _with_code(request, user, csrf, code, enable=True)


@router.post("/totp/disable", response_class=HTMLResponse)
def disable(
    request: Request,
    user: ConsoleStaff,
    code: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return _with_code(request, user, csrf, code, enable=False)

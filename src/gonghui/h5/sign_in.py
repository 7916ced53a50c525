"""H5 sign-in with an SMS code, and signing out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.accounts import phone as phones
from gonghui.accounts.otp import OtpPurpose, send_code
from gonghui.db import unit_of_work
from gonghui.deployment import dev_conveniences_allowed
from gonghui.errors import DomainError
from gonghui.h5.access import H5User
from gonghui.integrations.sms import dev_outbox
from gonghui.web.errors import error_key
from gonghui.web.session import check_same_origin, set_sign_in_cookies, sign_out
from gonghui.web.templating import render

router = APIRouter()


def _dev_sms_shown() -> bool:
    return dev_conveniences_allowed()


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a page of the H5 itself, else the hub (never another
    site: ``//host`` and backslashes are refused)."""
    if value and value.startswith("/h5/") and "\\" not in value and len(value) <= 4000:
        return value
    return "/h5/"


def render_login(request: Request, **context: Any) -> Response:
    context["next"] = safe_next(context.get("next"))
    phone = context.get("phone")
    if phone and context.get("sent") and _dev_sms_shown():
        messages = dev_outbox(phone)
        context["dev_code"] = messages[-1]["code"] if messages else None
    return render(request, "h5/login.html", context)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    return render_login(request, next=next)


@router.post("/login/code", response_class=HTMLResponse)
def send_login_code(
    request: Request,
    phone: Annotated[str, Form(max_length=20)],
    next: Annotated[str | None, Form(max_length=4000)] = None,
) -> Response:
    check_same_origin(request)
    try:
        with unit_of_work() as session:
            sent = send_code(
                session,
                phone=phone,
                purpose=OtpPurpose.LOGIN,
                ip=request.client.host if request.client else None,
            )
    except DomainError as exc:
        return render_login(request, phone=phone, error=error_key(exc), next=next)
    return render_login(request, phone=phone, sent=sent.phone_masked, next=next)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    phone: Annotated[str, Form(max_length=20)],
    code: Annotated[str, Form(max_length=10)],
    next: Annotated[str | None, Form(max_length=4000)] = None,
) -> Response:
    check_same_origin(request)
    try:
        with unit_of_work() as session:
            pair = phones.sign_in_with_sms(
                session,
                phone=phone,
                code=code.strip(),
                channel="h5",
                ip=request.client.host if request.client else None,
                user_agent=request.headers.get("user-agent"),
            )
    except DomainError as exc:
        return render_login(request, phone=phone, sent=True, error=error_key(exc), next=next)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_sign_in_cookies(response, pair)
    return response


@router.post("/logout")
def logout(request: Request, user: H5User, csrf: Annotated[str, Form()] = "") -> Response:
    return sign_out(request, user, csrf, then="/h5/login")

"""The till, on the cashier's phone: scan (or type) the member's code, enter the order
amount, redeem; below, the day's redemptions at this merchant.

A cashier signs in on the console's sign-in page (password, then TOTP where enabled) and
comes back here; a sign-in through a member channel never opens the till.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.accounts.models import SessionKind
from gonghui.clock import local_day
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.merchants import redeem, service, statement
from gonghui.types import form_cents
from gonghui.web.errors import error_key
from gonghui.web.session import LoginRequired, PageUser, check_csrf, current_page_user, sign_out
from gonghui.web.templating import render

router = APIRouter(prefix="/cashier", include_in_schema=False)

LOGIN_URL = "/console/login?" + urlencode({"next": "/cashier"})


def till_user(request: Request) -> PageUser:
    user = current_page_user(request)
    if user is None or user.principal.kind != SessionKind.STAFF:
        raise LoginRequired(LOGIN_URL)
    return user


TillUser = Annotated[PageUser, Depends(till_user)]


def _page(request: Request, user: PageUser, **extra: Any) -> Response:
    today = local_day()
    try:
        with unit_of_work(read_only=True) as session:
            till = service.seat(session, user_id=user.principal.user_id)
            lines = statement.period_lines(
                session, merchant_id=till.merchant_id, first=today, last=today, newest_first=True
            )
    except DomainError as exc:
        refused = {"csrf_token": user.csrf_token, "refused": error_key(exc)}
        return render(request, "cashier/till.html", refused, status=403)
    context: dict[str, Any] = {
        "csrf_token": user.csrf_token,
        "till": till,
        "lines": lines,
        "total_cents": sum(line.value_cents for line in lines),
        **extra,
    }
    template = "cashier/_result.html" if request.headers.get("hx-request") else "cashier/till.html"
    return render(request, template, context)


@router.get("", response_class=HTMLResponse)
def till_page(request: Request, user: TillUser) -> Response:
    return _page(request, user)


@router.post("/redeem", response_class=HTMLResponse)
def redeem_voucher(
    request: Request,
    user: TillUser,
    code: Annotated[str, Form(max_length=200)] = "",
    amount: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    order_cents = form_cents(amount)
    if order_cents is None:
        return _page(request, user, error="till.bad_amount", code=code, amount=amount)
    try:
        with unit_of_work() as session:
            done = redeem.redeem(
                session, user_id=user.principal.user_id, code=code, order_cents=order_cents
            )
    except DomainError as exc:
        return _page(request, user, error=error_key(exc), code=code, amount=amount)
    return _page(request, user, done=done)


@router.post("/logout")
def logout(request: Request, user: TillUser, csrf: Annotated[str, Form()] = "") -> Response:
    return sign_out(request, user, csrf, then=LOGIN_URL)

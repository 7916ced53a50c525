"""Console: the merchants that take the union's vouchers, their cashiers, what they
redeemed, and the settlement statement."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui import xlsx
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.merchants import service, statement
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/console/merchants", include_in_schema=False)


def _list_page(request: Request, user: PageUser, **extra: Any) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        merchants = service.list_merchants(session, actor=actor)
        visible = orgs.list_orgs(session, actor=actor)
    names = {o.id: o.name for o in visible}
    context = {
        "active": "nav.merchants",
        "csrf_token": user.csrf_token,
        "merchants": merchants,
        "org_names": names,
        "orgs": [o for o in visible if actor.can(Permission.MERCHANTS_MANAGE, o.path)],
        **extra,
    }
    return render(request, "console/merchants.html", context)


@router.get("", response_class=HTMLResponse)
def merchants_page(request: Request, user: ConsoleStaff) -> Response:
    return _list_page(request, user)


@router.post("", response_class=HTMLResponse)
def create_merchant(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    name: Annotated[str, Form(min_length=1, max_length=100)],
    address: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            merchant = service.create_merchant(
                session, actor=_actor(request, user), org_id=org_id, name=name, address=address
            )
            merchant_id = merchant.id
    except DomainError as exc:
        return _list_page(request, user, error=error_key(exc), name=name, address=address)
    return RedirectResponse(f"/console/merchants/{merchant_id}", status_code=303)


def _detail_page(
    request: Request,
    user: PageUser,
    merchant_id: int,
    *,
    first: date | None = None,
    last: date | None = None,
    **extra: Any,
) -> Response:
    actor = _actor(request, user)
    start, end = statement.period(first, last)
    context: dict[str, Any] = {
        "active": "nav.merchants",
        "csrf_token": user.csrf_token,
        "first": start,
        "last": end,
        **extra,
    }
    with unit_of_work(read_only=True) as session:
        merchant = service.get_merchant(session, actor=actor, merchant_id=merchant_id)
        context["merchant"] = merchant
        context["org_name"] = orgs.get_org(session, actor=actor, org_id=merchant.org_id).name
        context["cashiers"] = service.list_cashiers(session, actor=actor, merchant_id=merchant_id)
        try:
            lines = statement.period_lines(session, merchant_id=merchant.id, first=start, last=end)
        except DomainError as exc:
            lines = []
            context["period_error"] = error_key(exc)
    context["lines"] = lines
    context["total_cents"] = sum(line.value_cents for line in lines)
    context["statement_url"] = f"/console/merchants/{merchant_id}/statement.xlsx?" + urlencode(
        {"first": start.isoformat(), "last": end.isoformat()}
    )
    return render(request, "console/merchant.html", context)


@router.get("/{merchant_id}", response_class=HTMLResponse)
def merchant_page(
    request: Request,
    user: ConsoleStaff,
    merchant_id: Id,
    first: date | None = None,
    last: date | None = None,
    added: str | None = None,
) -> Response:
    return _detail_page(request, user, merchant_id, first=first, last=last, added=added)


@router.post("/{merchant_id}/cashiers", response_class=HTMLResponse)
def add_cashier(
    request: Request,
    user: ConsoleStaff,
    merchant_id: Id,
    username: Annotated[str, Form(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
    password: Annotated[str, Form(max_length=256)],
    name: Annotated[str, Form(min_length=1, max_length=50)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            service.add_cashier(
                session,
                actor=_actor(request, user),
                merchant_id=merchant_id,
                username=username,
                password=password,
                name=name,
            )
    except DomainError as exc:
        return _detail_page(
            request, user, merchant_id, error=error_key(exc), username=username, name=name
        )
    query = urlencode({"added": username.strip().lower()})
    return RedirectResponse(f"/console/merchants/{merchant_id}?{query}", status_code=303)


@router.post("/{merchant_id}/cashiers/{cashier_id}/disable", response_class=HTMLResponse)
def disable_cashier(
    request: Request,
    user: ConsoleStaff,
    merchant_id: Id,
    cashier_id: Id,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    with unit_of_work() as session:
        service.set_cashier_active(
            session,
            actor=_actor(request, user),
            merchant_id=merchant_id,
            cashier_id=cashier_id,
            active=False,
        )
    return RedirectResponse(f"/console/merchants/{merchant_id}", status_code=303)


@router.get("/{merchant_id}/statement.xlsx")
def statement_file(
    request: Request,
    user: ConsoleStaff,
    merchant_id: Id,
    first: date | None = None,
    last: date | None = None,
) -> Response:
    start, end = statement.period(first, last)
    labels = statement.LABELS["en" if request_locale(request) == "en" else "zh"]
    with unit_of_work(read_only=True) as session:
        merchant = service.get_merchant(
            session, actor=_actor(request, user), merchant_id=merchant_id
        )
        body = statement.to_xlsx(session, merchant=merchant, first=start, last=end, labels=labels)
    filename = f"statement-{merchant_id}-{start.isoformat()}-{end.isoformat()}.xlsx"
    return xlsx.attachment(body, filename)

"""The console's service catalogue page: the cards of the developer's OAuth clients (the
services their members see under 职工服务), editing one and its icon, and the opens by
category and union over 30 days (the same services as the catalogue API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.bodylimit import MULTIPART_FRAMING, max_body
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.openplatform import catalogue, clients
from gonghui.openplatform.catalogue import Category
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/services", include_in_schema=False)


def _page(
    request: Request,
    user: PageUser,
    *,
    editing: dict[str, Any] | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        found = clients.list_clients(session, actor=actor)
        cards = {c.client_pk: c for c in catalogue.cards(session, actor=actor)}
        usage = catalogue.usage(session, actor=actor)
        visible = orgs.list_orgs(session, actor=actor)
    context = {
        "active": "nav.oauth",
        "csrf_token": user.csrf_token,
        "clients": found,
        "cards": cards,
        "usage": usage,
        "total_opens": sum(row.opens for row in usage),
        "orgs": [o for o in visible if actor.can(Permission.APPS_MANAGE, o.path)],
        "categories": [c.value for c in Category],
        "editing": editing or {},
        "error": error,
        "done": done,
    }
    return render(request, "console/services.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def services_page(request: Request, user: ConsoleStaff, done: str = "") -> Response:
    return _page(request, user, done=done if done in ("saved", "icon") else None)


@router.post("/{client_pk}", response_class=HTMLResponse)
def save_card(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    category: Annotated[Category, Form()],
    title: Annotated[str, Form(max_length=40)],
    launch_uri: Annotated[str, Form(max_length=1000)],
    description: Annotated[str, Form(max_length=300)] = "",
    shown_to: Annotated[list[Id] | None, Form()] = None,
    listed: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    form = {"client_pk": client_pk, "category": category.value, "title": title,
            "description": description, "launch_uri": launch_uri,
            "shown_to": shown_to or [], "listed": listed}  # fmt: skip
    try:
        with unit_of_work() as session:
            catalogue.set_card(
                session,
                actor=_actor(request, user),
                client_pk=client_pk,
                category=category,
                title=title,
                description=description,
                launch_uri=launch_uri,
                shown_to=shown_to or [],
                listed=listed,
            )
    except DomainError as exc:
        return _page(request, user, editing=form, error=error_key(exc), status=422)
    return RedirectResponse(f"/console/services?done=saved#client-{client_pk}", status_code=303)


@router.post("/{client_pk}/icon", response_class=HTMLResponse)
@max_body(catalogue.ICON_MAX_BYTES + MULTIPART_FRAMING)
def save_icon(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    icon: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            catalogue.set_icon(
                session,
                actor=_actor(request, user),
                client_pk=client_pk,
                data=icon.file.read(catalogue.ICON_MAX_BYTES + 1),
            )
    except DomainError as exc:
        return _page(request, user, error=error_key(exc), status=422)
    return RedirectResponse(f"/console/services?done=icon#client-{client_pk}", status_code=303)

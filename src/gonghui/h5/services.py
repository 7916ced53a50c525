"""The members' service catalogue (职工服务): third-party services their union lists
(employment, transport, education, life). Opening one sends the member to the provider,
which signs them in with their union account (``openplatform/catalogue.py``)."""

from __future__ import annotations

from itertools import groupby
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui.db import unit_of_work
from gonghui.errors import NotFound
from gonghui.h5.access import H5User
from gonghui.images import WEB_MEDIA_TYPES
from gonghui.openplatform import catalogue, identity
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.storage import download_response
from gonghui.types import Id
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter()


@router.get("/services", response_class=HTMLResponse)
def services_page(request: Request, user: H5User) -> Response:
    with unit_of_work(read_only=True) as session:
        view = identity.member_view(session, user.principal.user_id)
        offers = catalogue.offers(session, view=view) if view else []
    return render(
        request,
        "h5/services.html",
        {
            "verified": bool(view and view.verified),
            "groups": [(c, list(items)) for c, items in groupby(offers, key=lambda o: o.category)],
            "csrf_token": user.csrf_token,
            "tab": "hub",
        },
    )


@router.post("/services/{card_id}/open")
def open_service(
    request: Request, user: H5User, card_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    with unit_of_work() as session:
        view = identity.member_view(session, user.principal.user_id)
        if view is None:
            raise NotFound(OpenPlatformError.SERVICE_NOT_FOUND, f"service {card_id} not found")
        target = catalogue.open_service(session, card_id=card_id, view=view)
    return RedirectResponse(target, status_code=303)


@router.get("/services/{card_id}/icon", response_class=Response)
def service_icon(user: H5User, card_id: Id) -> Response:
    with unit_of_work(read_only=True) as session:
        view = identity.member_view(session, user.principal.user_id)
        if view is None:
            raise NotFound(OpenPlatformError.SERVICE_NOT_FOUND, f"service {card_id} not found")
        key = catalogue.icon_key(session, card_id=card_id, view=view)
    extension = key.rpartition(".")[2]
    return download_response(
        key,
        filename=f"icon.{extension}",
        content_type=WEB_MEDIA_TYPES[extension],
        cache_control="private, max-age=3600",
    )

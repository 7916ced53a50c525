"""The console's page of one OAuth client's webhooks: its endpoints (add, disable and
enable, rotate the secret, delete), and an endpoint's delivery log with redelivery (the
same services as ``/api/v1/oauth-clients/{id}/webhooks``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.baas.triggers.delivery import last_status_codes
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.openplatform import clients, webhooks
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/oauth-clients/{client_pk}/webhooks", include_in_schema=False)

DONE = ("disabled", "enabled", "deleted", "redelivered")


def _base(client_pk: int) -> str:
    return f"/console/oauth-clients/{client_pk}/webhooks"


def _page(
    request: Request,
    user: PageUser,
    client_pk: int,
    *,
    endpoint_id: int | None = None,
    created: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        client = clients.get(session, actor=actor, client_pk=client_pk)
        endpoints = webhooks.list_endpoints(session, actor=actor, client_pk=client_pk)
        shown = next((e for e in endpoints if e.id == endpoint_id), None)
        deliveries = (
            webhooks.list_deliveries(
                session, actor=actor, client_pk=client_pk, endpoint_id=shown.id
            )
            if shown
            else []
        )
        codes = last_status_codes(session, [d.id for d in deliveries])
    context = {
        "active": "nav.oauth",
        "csrf_token": user.csrf_token,
        "client": client,
        "endpoints": endpoints,
        "shown": shown,
        "deliveries": deliveries,
        "codes": codes,
        "events": [str(e) for e in webhooks.WebhookEvent],
        "created": created,
        "form": form or {"events": []},
        "error": error,
        "done": done,
        "base": _base(client_pk),
    }
    return render(request, "console/oauth_webhooks.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def webhooks_page(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    endpoint: Id | None = None,
    done: str = "",
    error: str = "",
) -> Response:
    return _page(
        request,
        user,
        client_pk,
        endpoint_id=endpoint,
        done=done if done in DONE else None,
        error=error if error.startswith("error.") else None,
    )


@router.post("", response_class=HTMLResponse)
def add_endpoint(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    url: Annotated[str, Form(max_length=500)],
    events: Annotated[list[str] | None, Form()] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Add; the answer (not a redirect) shows the secret, once."""
    check_csrf(request, user, csrf)
    form = {"url": url, "events": events or []}
    try:
        with unit_of_work() as session:
            endpoint, secret = webhooks.create_endpoint(
                session,
                actor=_actor(request, user),
                client_pk=client_pk,
                url=url.strip(),
                events=events or [],
            )
            created = {"url": endpoint.url, "secret": secret}
    except DomainError as exc:
        return _page(request, user, client_pk, form=form, error=error_key(exc), status=422)
    return _page(request, user, client_pk, created=created, status=201)


@router.post("/{endpoint_id}/state")
def set_state(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    endpoint_id: Id,
    state: Annotated[Literal["disabled", "enabled", "deleted"], Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def change() -> None:
        with unit_of_work() as session:
            actor = _actor(request, user)
            if state == "deleted":
                webhooks.delete_endpoint(
                    session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id
                )
            else:
                webhooks.update_endpoint(
                    session,
                    actor=actor,
                    client_pk=client_pk,
                    endpoint_id=endpoint_id,
                    enabled=state == "enabled",
                )

    return back_to(_base(client_pk), change, done=state)


@router.post("/{endpoint_id}/secret", response_class=HTMLResponse)
def rotate_secret(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    endpoint_id: Id,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            actor = _actor(request, user)
            secret = webhooks.rotate_secret(
                session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id
            )
            _, endpoint = webhooks.get_endpoint(
                session, actor=actor, client_pk=client_pk, endpoint_id=endpoint_id
            )
            created = {"url": endpoint.url, "secret": secret}
    except DomainError as exc:
        return _page(request, user, client_pk, error=error_key(exc), status=422)
    return _page(request, user, client_pk, created=created)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver")
def redeliver(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    endpoint_id: Id,
    delivery_id: Id,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def again() -> None:
        with unit_of_work() as session:
            webhooks.redeliver(
                session,
                actor=_actor(request, user),
                client_pk=client_pk,
                endpoint_id=endpoint_id,
                delivery_id=delivery_id,
            )

    return back_to(f"{_base(client_pk)}?endpoint={endpoint_id}", again, done="redelivered")

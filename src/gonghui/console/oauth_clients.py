"""The console's open-platform page for developers: the OAuth clients of their subtree,
registering one (its secret shown once, on the answer to the form), rotating a secret,
disabling and enabling (the same services as ``/api/v1/oauth-clients``); and the staff
consent screen: the scopes that act for an org, approved or withdrawn by the staff who
hold their rights (``/api/v1/oauth-approvals``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.openplatform import approvals, clients, scopes, usage
from gonghui.openplatform.clients import ClientKind
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/oauth-clients", include_in_schema=False)


def _page(
    request: Request,
    user: PageUser,
    *,
    created: dict[str, Any] | None = None,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        found = clients.list_clients(session, actor=actor)
        visible = orgs.list_orgs(session, actor=actor)
        recent = usage.recent(session, client_pks=[c.id for c in found])
        consent = approvals.overview(session, actor=actor)
    context = {
        "active": "nav.oauth",
        "csrf_token": user.csrf_token,
        "clients": found,
        "calls": {c.id: recent.total(c.id, 7) for c in found},
        # 30 days of calls a client, for the chart (its table: the 7-day column).
        "chart": {
            "days": [d.strftime("%m-%d") for d in recent.days],
            "clients": [{"name": c.name, "calls": recent.calls[c.id]} for c in found],
        },
        "consent": consent,
        "org_names": {o.id: o.name for o in visible},
        "orgs": [o for o in visible if actor.can(Permission.APPS_MANAGE, o.path)],
        "scopes": list(scopes.SCOPES),
        "created": created,
        "form": form or {"scope": ["openid"], "kind": "confidential"},
        "error": error,
        "done": done,
    }
    return render(request, "console/oauth_clients.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def clients_page(request: Request, user: ConsoleStaff, done: str = "", error: str = "") -> Response:
    return _page(
        request,
        user,
        done=done if done in ("disabled", "enabled", "approved", "withdrawn") else None,
        error=error if error.startswith("error.") else None,
    )


@router.post("", response_class=HTMLResponse)
def register(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    name: Annotated[str, Form(max_length=100)],
    kind: Annotated[ClientKind, Form()],
    redirect_uris: Annotated[str, Form(max_length=10_000)],
    scope: Annotated[list[str] | None, Form()] = None,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Register; the answer (not a redirect) shows the secret, once."""
    check_csrf(request, user, csrf)
    uris = [line.strip() for line in redirect_uris.splitlines() if line.strip()]
    form = {"org_id": org_id, "name": name, "kind": kind.value, "uris": redirect_uris,
            "scope": scope or []}  # fmt: skip
    try:
        with unit_of_work() as session:
            client, secret = clients.register(
                session,
                actor=_actor(request, user),
                org_id=org_id,
                name=name.strip(),
                kind=kind,
                redirect_uris=uris,
                scope=" ".join(scope or []),
            )
            created = {"name": client.name, "client_id": client.client_id, "secret": secret}
    except DomainError as exc:
        return _page(request, user, form=form, error=error_key(exc), status=422)
    return _page(request, user, created=created, status=201)


@router.post("/{client_pk}/secret", response_class=HTMLResponse)
def rotate_secret(
    request: Request, user: ConsoleStaff, client_pk: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            actor = _actor(request, user)
            secret = clients.rotate_secret(session, actor=actor, client_pk=client_pk)
            client = clients.get(session, actor=actor, client_pk=client_pk)
            created = {"name": client.name, "client_id": client.client_id, "secret": secret}
    except DomainError as exc:
        return _page(request, user, error=error_key(exc), status=422)
    return _page(request, user, created=created)


@router.post("/{client_pk}/state")
def set_state(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    state: Annotated[Literal["disabled", "enabled"], Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def change() -> None:
        with unit_of_work() as session:
            clients.update(
                session,
                actor=_actor(request, user),
                client_pk=client_pk,
                disabled=state == "disabled",
            )

    return back_to("/console/oauth-clients", change, done=state)


@router.post("/{client_pk}/approvals")
def decide_scope(
    request: Request,
    user: ConsoleStaff,
    client_pk: Id,
    scope: Annotated[str, Form(max_length=64)],
    decision: Annotated[Literal["approved", "withdrawn"], Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Staff consent: approve a scope acting for the org, or withdraw it (audited)."""
    check_csrf(request, user, csrf)

    def change() -> None:
        with unit_of_work() as session:
            decide = approvals.approve if decision == "approved" else approvals.withdraw
            decide(session, actor=_actor(request, user), client_pk=client_pk, scope=scope)

    return back_to("/console/oauth-clients", change, done=decision)

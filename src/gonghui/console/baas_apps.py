"""The developer portal (开发者中心): the BaaS apps of the developer's subtree, creating
one, its page (keys, tables, the way to its functions, triggers and files), rotating a
key, and copying an app's configuration (the same services as ``/api/v1/baas/apps``).

A key exists in clear only in the answer that made it (creation, rotation): that answer
shows it once; every later page shows its kind's prefix and a mask.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from gonghui.baas import apps, copy
from gonghui.baas.apps import KeyKind
from gonghui.baas.tables import schema
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.orgs import service as orgs
from gonghui.tenancy import Actor, Permission, path_within
from gonghui.types import Id
from gonghui.web.errors import error_key, error_text, field_errors
from gonghui.web.i18n import translator
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/console/apps", include_in_schema=False)

NAV = "nav.developer"


def problems_of(request: Request, exc: DomainError) -> dict[str, str]:
    """A portal form's field errors: translated, with the service's own words for the
    developer ("must be at least 16")."""
    return field_errors(exc, translator(request_locale(request)), with_detail=True)


def refusal_of(request: Request, exc: DomainError) -> str:
    """A portal page's top-of-form refusal: translated, with the service's own words for the
    developer ("table scores has no field team")."""
    return error_text(exc, translator(request_locale(request)), with_detail=True)


def app_context(session: Session, actor: Actor, app_id: int, tab: str) -> dict[str, Any]:
    """What every page of one app shows above its own part: the app (or "not found" for
    anyone without ``apps.manage`` over its org) and the tab it is on."""
    app = apps.get_app(session, actor=actor, app_id=app_id)
    return {"active": NAV, "app": app, "tab": tab, "base": f"/console/apps/{app.id}"}


def _manageable_orgs(session: Session, actor: Actor) -> list[Any]:
    return [
        o for o in orgs.list_orgs(session, actor=actor) if actor.can(Permission.APPS_MANAGE, o.path)
    ]


def _list_page(
    request: Request,
    user: PageUser,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        found = apps.list_apps(session, actor=actor)
        visible = orgs.list_orgs(session, actor=actor)
        manageable = _manageable_orgs(session, actor)
    context = {
        "active": NAV,
        "csrf_token": user.csrf_token,
        "apps": found,
        "org_names": {o.id: o.name for o in visible},
        "orgs": manageable,
        "form": form or {},
        "error": error,
    }
    return render(request, "console/baas_apps.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def apps_page(request: Request, user: ConsoleStaff) -> Response:
    return _list_page(request, user)


def _app_page(
    request: Request,
    user: PageUser,
    app_id: int,
    *,
    keys: dict[str, str] | None = None,
    error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "overview")
        tables = schema.list_tables(session, actor=actor, app_id=app_id)
        org = orgs.get_org(session, actor=actor, org_id=context["app"].org_id)
    context.update(
        csrf_token=user.csrf_token,
        org_name=org.name,
        tables=tables,
        keys=keys or {},
        masks={k.value: apps.KEY_PREFIX[k] + "•" * 12 for k in KeyKind},
        error=error,
        done=done,
    )
    return render(request, "console/baas_app.html", context, status=status)


@router.post("", response_class=HTMLResponse)
def create_app(
    request: Request,
    user: ConsoleStaff,
    org_id: Annotated[Id, Form()],
    name: Annotated[str, Form(max_length=100)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Create; the answer (not a redirect) is the app's page with both keys, shown once."""
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            app, keys = apps.create_app(
                session, actor=_actor(request, user), org_id=org_id, name=name.strip(), settings={}
            )
            app_id = app.id
    except DomainError as exc:
        form = {"org_id": org_id, "name": name}
        return _list_page(request, user, form=form, error=error_key(exc), status=422)
    shown = {"client": keys.client_key, "server": keys.server_key}
    return _app_page(request, user, app_id, keys=shown, done="created", status=201)


@router.get("/{app_id}", response_class=HTMLResponse)
def app_page(
    request: Request, user: ConsoleStaff, app_id: Id, done: str = "", error: str = ""
) -> Response:
    return _app_page(
        request,
        user,
        app_id,
        done=done if done == "table_dropped" else None,
        error=error if error.startswith("error.") else None,
    )


@router.post("/{app_id}/keys/{kind}/rotate", response_class=HTMLResponse)
def rotate_key(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    kind: KeyKind,
    confirm: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Rotate once the developer has confirmed (the old key stops working at once); the
    answer shows the new key, once."""
    check_csrf(request, user, csrf)
    if confirm != "yes":
        return _app_page(request, user, app_id, error="baasc.rotate_unconfirmed", status=422)
    with unit_of_work() as session:
        key = apps.rotate_key(session, actor=_actor(request, user), app_id=app_id, kind=kind)
    return _app_page(request, user, app_id, keys={kind.value: key}, done="rotated")


# -- copying an app -------------------------------------------------------------------------


def _copy_page(
    request: Request,
    user: PageUser,
    app_id: int,
    *,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "copy")
        template = copy.export_template(session, actor=actor, app_id=app_id)
        source_org = orgs.get_org(session, actor=actor, org_id=context["app"].org_id)
        targets = [
            o for o in _manageable_orgs(session, actor) if path_within(o.path, source_org.path)
        ]
        others = [a for a in apps.list_apps(session, actor=actor) if a.id != app_id]
    context.update(
        csrf_token=user.csrf_token,
        template=template,
        targets=targets,
        other_apps=others,
        form=form or {"org_id": source_org.id, "name": f"{context['app'].name}-copy"},
        error=error,
    )
    return render(request, "console/baas_copy.html", context, status=status)


@router.get("/{app_id}/copy", response_class=HTMLResponse)
def copy_page(request: Request, user: ConsoleStaff, app_id: Id) -> Response:
    """The preview: exactly what a copy carries (the app's template), and what it never does."""
    return _copy_page(request, user, app_id)


@router.post("/{app_id}/copy", response_class=HTMLResponse)
def copy_app(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    org_id: Annotated[Id, Form()],
    name: Annotated[str, Form(max_length=100)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            app, keys = copy.copy_app(
                session, actor=_actor(request, user), app_id=app_id, org_id=org_id, name=name
            )
            new_id = app.id
    except DomainError as exc:
        form = {"org_id": org_id, "name": name}
        return _copy_page(request, user, app_id, form=form, error=error_key(exc), status=422)
    shown = {"client": keys.client_key, "server": keys.server_key}
    return _app_page(request, user, new_id, keys=shown, done="copied", status=201)

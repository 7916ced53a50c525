"""Console: saving an activity as a template, cloning it, repeating it next month, the
templates page,
and a draft from a template, through the same services as the API.

"From a template" creates the draft directly (org, window, title) instead of pre-filling
the wizard: the wizard holds three prizes and one voucher stock, while a template may hold
fifty prizes, several stocks and rewards the wizard has no field for; a draft keeps all of
it, and the activity page (edit, publish) is where the operator reviews it anyway.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from gonghui.activities import service as activities
from gonghui.activities.templates import service as templates
from gonghui.activities.templates.models import ActivityTemplate
from gonghui.activities.templates.schemas import TemplateRename, TemplateSave, TemplateUse
from gonghui.clock import display_zone, now
from gonghui.console.activities import _LOCAL_FORMAT, _local
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.orgs import service as orgs
from gonghui.tenancy import Actor, Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

INVALID_NAME = "error.activity_template.bad_name"
BAD_USE = "error.activity_template.bad_use"


def _back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


@router.post("/activities/{activity_id}/save-template")
def save_template(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    name: Annotated[str, Form(max_length=400)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    target = f"/console/activities/{activity_id}"
    try:
        data = TemplateSave(activity_id=activity_id, name=name)
    except ValidationError:
        return _back(target, error=INVALID_NAME)
    try:
        with unit_of_work() as session:
            templates.save_template(
                session, actor=_actor(request, user), activity_id=activity_id, name=data.name
            )
    except DomainError as exc:
        return _back(target, error=error_key(exc))
    return _back(target, template_saved="1")


@router.post("/activities/{activity_id}/repeat")
def repeat(
    request: Request, user: ConsoleStaff, activity_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    """One click: next month's draft, and the operator lands on it."""
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            copy = activities.repeat(session, actor=_actor(request, user), activity_id=activity_id)
            copy_id = copy.id
    except DomainError as exc:
        return _back(f"/console/activities/{activity_id}", error=error_key(exc))
    return _back(f"/console/activities/{copy_id}", repeated="1")


@router.post("/activities/{activity_id}/clone")
def clone(
    request: Request, user: ConsoleStaff, activity_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    """One click: a draft copy of the activity's design (same window and title, as the
    API's clone without a body), and the operator lands on it."""
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            copy = activities.clone(session, actor=_actor(request, user), activity_id=activity_id)
            copy_id = copy.id
    except DomainError as exc:
        return _back(f"/console/activities/{activity_id}", error=error_key(exc))
    return _back(f"/console/activities/{copy_id}", cloned="1")


def _owned(actor: Actor, template: ActivityTemplate) -> bool:
    return actor.can(Permission.ACTIVITIES_MANAGE, template.org.path)


@router.get("/activity-templates", response_class=HTMLResponse)
def list_page(request: Request, user: ConsoleStaff, done: str = "", error: str = "") -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        rows = [
            {"template": t, "owned": _owned(actor, t)}
            for t in templates.list_templates(session, actor=actor)
        ]
    context: dict[str, Any] = {
        "active": "nav.activities",
        "csrf_token": user.csrf_token,
        "rows": rows,
        "done": done if done in ("renamed", "deleted") else None,
        "error": error if error.startswith("error.") else None,
    }
    return render(request, "console/activity_templates.html", context)


@router.post("/activity-templates/{template_id}/rename")
def rename(
    request: Request,
    user: ConsoleStaff,
    template_id: Id,
    name: Annotated[str, Form(max_length=400)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        data = TemplateRename(name=name)
    except ValidationError:
        return _back("/console/activity-templates", error=INVALID_NAME)
    try:
        with unit_of_work() as session:
            templates.rename_template(
                session, actor=_actor(request, user), template_id=template_id, name=data.name
            )
    except DomainError as exc:
        return _back("/console/activity-templates", error=error_key(exc))
    return _back("/console/activity-templates", done="renamed")


@router.post("/activity-templates/{template_id}/delete")
def delete(
    request: Request, user: ConsoleStaff, template_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    try:
        with unit_of_work() as session:
            templates.delete_template(session, actor=_actor(request, user), template_id=template_id)
    except DomainError as exc:
        return _back("/console/activity-templates", error=error_key(exc))
    return _back("/console/activity-templates", done="deleted")


def _use_page(
    request: Request,
    user: PageUser,
    template_id: int,
    form: dict[str, str],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        template = templates.get_template(session, actor=actor, template_id=template_id)
        managed = [
            o
            for o in orgs.list_orgs(session, actor=actor)
            if actor.can(Permission.ACTIVITIES_MANAGE, o.path)
        ]
        context: dict[str, Any] = {
            "active": "nav.activities",
            "csrf_token": user.csrf_token,
            "template": template,
            "org_name": template.org_name,
            "orgs": managed,
            "form": form,
            "error": error,
        }
    return render(request, "console/activity_template_use.html", context, status=status)


@router.get("/activity-templates/{template_id}/use", response_class=HTMLResponse)
def use_page(request: Request, user: ConsoleStaff, template_id: Id) -> Response:
    start = now().astimezone(display_zone()).replace(second=0, microsecond=0)
    form = {
        "starts_at": start.strftime(_LOCAL_FORMAT),
        "ends_at": (start + timedelta(days=7)).strftime(_LOCAL_FORMAT),
        "title": "",
    }
    return _use_page(request, user, template_id, form)


@router.post("/activity-templates/{template_id}/use", response_class=HTMLResponse)
def use(
    request: Request,
    user: ConsoleStaff,
    template_id: Id,
    org_id: Annotated[str, Form(max_length=32)] = "",
    starts_at: Annotated[str, Form(max_length=32)] = "",
    ends_at: Annotated[str, Form(max_length=32)] = "",
    title: Annotated[str, Form(max_length=400)] = "",
    form_app_id: Annotated[str, Form(max_length=32)] = "",
    form_table: Annotated[str, Form(max_length=100)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    form = {
        "org_id": org_id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "title": title,
        "form_app_id": form_app_id,
        "form_table": form_table,
    }
    # A competition's own registration form, when the operator names one (both fields).
    chosen = (
        {"app_id": form_app_id.strip(), "table": form_table.strip()}
        if form_app_id.strip() or form_table.strip()
        else None
    )
    try:
        data = TemplateUse.model_validate(
            {
                "org_id": org_id,
                "starts_at": _local(starts_at),
                "ends_at": _local(ends_at),
                "title": title.strip() or None,
                "form": chosen,
            }
        )
    except ValidationError:
        return _use_page(request, user, template_id, form, error=BAD_USE, status=422)
    try:
        with unit_of_work() as session:
            activity = templates.create_from_template(
                session,
                actor=_actor(request, user),
                template_id=template_id,
                org_id=data.org_id,
                starts_at=data.starts_at,
                ends_at=data.ends_at,
                title=data.title,
                form=data.form,
            )
            activity_id = activity.id
    except DomainError as exc:
        return _use_page(
            request, user, template_id, form, error=error_key(exc), status=exc.status_code
        )
    return _back(f"/console/activities/{activity_id}", created="1")

"""The developer portal's table designer: create a table, add, change and drop its fields
(types, rules, indexes), its record permissions, drop it (the same services as
``/api/v1/baas/apps/{id}/tables``). A change that destroys or converts data shows what it
would touch (:func:`schema.preview_loss`) and runs only once confirmed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from gonghui.baas import dataio
from gonghui.baas.permissions import Action
from gonghui.baas.schemas import FieldChange, FieldSpec
from gonghui.baas.tables import schema
from gonghui.baas.tables.types import SAFE_CHANGES, FieldType
from gonghui.console.baas_apps import app_context, problems_of, refusal_of
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.orgs.models import Role
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/apps/{app_id}/tables", include_in_schema=False)

GRANTS = ["public", "users", "members", "creator", *(f"staff:{r.value}" for r in Role)]
NUMBER_RULES = ("min", "max")
COUNT_RULES = ("min_length", "max_length")


def _url(app_id: int, table: str, rest: str = "") -> str:
    return f"/console/apps/{app_id}/tables/{table}{rest}"


def _number(text: str) -> Any:
    """A rule's number as typed; anything else is passed on for the service to refuse."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _rules(form: FormData) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    for key in (*NUMBER_RULES, *COUNT_RULES):
        text = str(form.get(f"rule_{key}", "")).strip()
        if text:
            rules[key] = _number(text)
    pattern = str(form.get("rule_pattern", ""))
    if pattern:
        rules["pattern"] = pattern
    enum = [v.strip() for v in str(form.get("rule_enum", "")).split(",") if v.strip()]
    if enum:
        rules["enum"] = enum
    return rules


def _default(ftype: FieldType, form: FormData, rules: dict[str, Any]) -> Any:
    text = str(form.get("default", ""))
    value = dataio.value_from_text(ftype, text, "default")
    if "enum" in rules and ftype is not FieldType.STRING and ftype is not FieldType.TEXT:
        rules["enum"] = [dataio.value_from_text(ftype, v, "rules.enum") for v in rules["enum"]]
    return value


def _problems(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]) or "form": e["msg"] for e in exc.errors()}


# -- the table ------------------------------------------------------------------------------


def _table_page(
    request: Request,
    user: PageUser,
    app_id: int,
    name: str,
    *,
    form: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    error: str | None = None,
    message: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "overview")
        table = schema.describe_table(session, actor=actor, app_id=app_id, name=name)
        tables = schema.list_tables(session, actor=actor, app_id=app_id)
    context.update(
        csrf_token=user.csrf_token,
        table=table,
        table_names={t.id: t.name for t in tables},
        types=[t.value for t in FieldType],
        actions=[a.value for a in Action],
        grants=GRANTS,
        form=form or {"type": "string"},
        problems=problems or {},
        error=error,
        message=message,
        done=done,
    )
    return render(request, "console/baas_table.html", context, status=status)


@router.post("", response_class=HTMLResponse)
def create_table(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: Annotated[str, Form(max_length=63)],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    actor = _actor(request, user)
    try:
        with unit_of_work() as session:
            schema.create_table(
                session, actor=actor, app_id=app_id, name=name.strip(), fields=[], permissions={}
            )
    except DomainError as exc:
        target = f"/console/apps/{app_id}?error={error_key(exc)}"
        return RedirectResponse(target, status_code=303)
    return RedirectResponse(_url(app_id, name.strip(), "?done=table_created"), status_code=303)


@router.get("/{name}", response_class=HTMLResponse)
def table_page(
    request: Request, user: ConsoleStaff, app_id: Id, name: str, done: str = ""
) -> Response:
    known = ("table_created", "field_added", "field_changed", "field_dropped", "permissions")
    return _table_page(request, user, app_id, name, done=done if done in known else None)


@router.post("/{name}/fields", response_class=HTMLResponse)
async def add_field(request: Request, user: ConsoleStaff, app_id: Id, name: str) -> Response:
    async with request.form() as form:
        check_csrf(request, user, str(form.get("csrf", "")))
        typed = {k: str(v) for k, v in form.items()}
        try:
            ftype = FieldType(str(form.get("type", "")))
            rules = _rules(form)
            spec = FieldSpec(
                name=str(form.get("name", "")).strip(),
                type=ftype,
                required=form.get("required") == "1",
                unique=form.get("unique") == "1",
                indexed=form.get("indexed") == "1",
                default=_default(ftype, form, rules),
                rules=rules,
                ref=(str(form.get("ref", "")) or None) if ftype is FieldType.REFERENCE else None,
            )
        except ValidationError as exc:
            return _table_page(
                request, user, app_id, name, form=typed, problems=_problems(exc), status=422
            )
        except ValueError:
            return _table_page(
                request, user, app_id, name, form=typed, error="baasc.bad_type", status=422
            )
        except DomainError as exc:
            return _table_page(
                request,
                user,
                app_id,
                name,
                form=typed,
                problems=problems_of(request, exc),
                status=422,
            )
    try:
        with unit_of_work() as session:
            schema.add_field(
                session, actor=_actor(request, user), app_id=app_id, name=name, spec=spec
            )
    except DomainError as exc:
        return _table_page(
            request,
            user,
            app_id,
            name,
            form=typed,
            problems=problems_of(request, exc),
            message=refusal_of(request, exc),
            status=422,
        )
    return RedirectResponse(_url(app_id, name, "?done=field_added"), status_code=303)


@router.post("/{name}/permissions", response_class=HTMLResponse)
async def set_permissions(request: Request, user: ConsoleStaff, app_id: Id, name: str) -> Response:
    async with request.form() as form:
        check_csrf(request, user, str(form.get("csrf", "")))
        permissions = {a.value: [str(g) for g in form.getlist(a.value)] for a in Action}
    try:
        with unit_of_work() as session:
            schema.set_permissions(
                session,
                actor=_actor(request, user),
                app_id=app_id,
                name=name,
                permissions=permissions,
            )
    except DomainError as exc:
        return _table_page(
            request, user, app_id, name, message=refusal_of(request, exc), status=422
        )
    return RedirectResponse(_url(app_id, name, "?done=permissions"), status_code=303)


# -- destructive changes: preview, then confirm ---------------------------------------------


def _confirm_page(
    request: Request,
    user: PageUser,
    app_id: int,
    name: str,
    *,
    what: str,
    action: str,
    field_name: str | None = None,
    hidden: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "overview")
        loss = schema.preview_loss(
            session, actor=actor, app_id=app_id, name=name, field_name=field_name
        )
    context.update(
        csrf_token=user.csrf_token,
        table_name=name,
        field_name=field_name,
        what=what,
        action=action,
        hidden=hidden or {},
        details=details or {},
        loss=loss,
        back=_url(app_id, name),
    )
    return render(request, "console/baas_confirm.html", context)


@router.get("/{name}/drop", response_class=HTMLResponse)
def drop_table_preview(request: Request, user: ConsoleStaff, app_id: Id, name: str) -> Response:
    return _confirm_page(
        request, user, app_id, name, what="drop_table", action=_url(app_id, name, "/drop")
    )


@router.post("/{name}/drop", response_class=HTMLResponse)
def drop_table(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: str,
    confirm: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    if confirm != "yes":
        return drop_table_preview(request, user, app_id, name)
    try:
        with unit_of_work() as session:
            schema.drop_table(
                session, actor=_actor(request, user), app_id=app_id, name=name, confirm=True
            )
    except DomainError as exc:
        return _table_page(
            request, user, app_id, name, message=refusal_of(request, exc), status=409
        )
    return RedirectResponse(f"/console/apps/{app_id}?done=table_dropped", status_code=303)


# -- one field ------------------------------------------------------------------------------


def _field_page(
    request: Request,
    user: PageUser,
    app_id: int,
    name: str,
    field_name: str,
    *,
    form: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "overview")
        table = schema.describe_table(session, actor=actor, app_id=app_id, name=name)
    field = table.by_name.get(field_name)
    if field is None:
        return RedirectResponse(_url(app_id, name), status_code=303)
    current = {
        "name": field.name,
        "type": field.type.value,
        "required": field.required,
        "unique": field.unique,
        "indexed": field.indexed,
        "default": "" if field.default is None else str(field.default),
        **{f"rule_{k}": v for k, v in field.rules.items() if k != "enum"},
        "rule_enum": ", ".join(str(v) for v in field.rules.get("enum", [])),
    }
    context.update(
        csrf_token=user.csrf_token,
        table=table,
        field=field,
        types=[field.type.value, *sorted(t.value for t in SAFE_CHANGES.get(field.type, ()))],
        form=form or current,
        problems=problems or {},
        message=message,
    )
    return render(request, "console/baas_field.html", context, status=status)


@router.get("/{name}/fields/{field_name}", response_class=HTMLResponse)
def field_page(
    request: Request, user: ConsoleStaff, app_id: Id, name: str, field_name: str
) -> Response:
    return _field_page(request, user, app_id, name, field_name)


@router.post("/{name}/fields/{field_name}", response_class=HTMLResponse)
async def change_field(
    request: Request, user: ConsoleStaff, app_id: Id, name: str, field_name: str
) -> Response:
    """Change a field; a type change (every value converted) first shows what it touches."""
    actor = _actor(request, user)
    async with request.form() as form:
        check_csrf(request, user, str(form.get("csrf", "")))
        typed = {k: str(v) for k, v in form.items()}
        with unit_of_work(read_only=True) as session:
            table = schema.describe_table(session, actor=actor, app_id=app_id, name=name)
        field = table.by_name.get(field_name)
        if field is None:
            return RedirectResponse(_url(app_id, name), status_code=303)
        try:
            ftype = FieldType(typed.get("type", field.type.value))
            rules = _rules(form)
            change = FieldChange(
                name=typed.get("name", field.name).strip() or field.name,
                type=ftype,
                required=typed.get("required") == "1",
                unique=typed.get("unique") == "1",
                indexed=typed.get("indexed") == "1",
                default=_default(ftype, form, rules),
                rules=rules,
            )
        except ValidationError as exc:
            return _field_page(
                request,
                user,
                app_id,
                name,
                field_name,
                form=typed,
                problems=_problems(exc),
                status=422,
            )
        except DomainError as exc:
            return _field_page(
                request,
                user,
                app_id,
                name,
                field_name,
                form=typed,
                problems=problems_of(request, exc),
                status=422,
            )
        except ValueError:
            return RedirectResponse(_url(app_id, name, f"/fields/{field_name}"), status_code=303)
    if ftype is not field.type and typed.get("confirm") != "yes":
        return _confirm_page(
            request,
            user,
            app_id,
            name,
            what="retype_field",
            action=_url(app_id, name, f"/fields/{field_name}"),
            field_name=field_name,
            hidden={k: v for k, v in typed.items() if k not in ("csrf", "confirm")},
            details={"from": field.type.value, "to": ftype.value},
        )
    try:
        with unit_of_work() as session:
            schema.change_field(
                session, actor=actor, app_id=app_id, name=name, field_name=field_name, change=change
            )
    except DomainError as exc:
        return _field_page(
            request,
            user,
            app_id,
            name,
            field_name,
            form=typed,
            problems=problems_of(request, exc),
            message=refusal_of(request, exc),
            status=422,
        )
    return RedirectResponse(_url(app_id, name, "?done=field_changed"), status_code=303)


@router.get("/{name}/fields/{field_name}/drop", response_class=HTMLResponse)
def drop_field_preview(
    request: Request, user: ConsoleStaff, app_id: Id, name: str, field_name: str
) -> Response:
    return _confirm_page(
        request,
        user,
        app_id,
        name,
        what="drop_field",
        action=_url(app_id, name, f"/fields/{field_name}/drop"),
        field_name=field_name,
    )


@router.post("/{name}/fields/{field_name}/drop", response_class=HTMLResponse)
def drop_field(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: str,
    field_name: str,
    confirm: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    if confirm != "yes":
        return drop_field_preview(request, user, app_id, name, field_name)
    with unit_of_work() as session:
        schema.drop_field(
            session,
            actor=_actor(request, user),
            app_id=app_id,
            name=name,
            field_name=field_name,
            confirm=True,
        )
    return RedirectResponse(_url(app_id, name, "?done=field_dropped"), status_code=303)

"""The developer portal's triggers: the app's triggers, creating one (its secret, for a
webhook or an incoming trigger, shown once), enabling and disabling, and the deliveries
with their status and redelivery (the same services as ``/api/v1/baas/apps/{id}/triggers``
and ``.../deliveries``)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.baas.functions import service as functions
from gonghui.baas.tables import schema
from gonghui.baas.triggers import service
from gonghui.baas.triggers.delivery import last_status_codes
from gonghui.baas.triggers.models import TargetKind, TriggerEvent
from gonghui.console.baas_apps import app_context, problems_of, refusal_of
from gonghui.console.router import ConsoleStaff, _actor, back_to
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.settings import get_settings
from gonghui.types import Id
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/apps/{app_id}/triggers", include_in_schema=False)

DONE = ("enabled", "disabled", "redelivered")


def _page(
    request: Request,
    user: PageUser,
    app_id: int,
    *,
    created: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "triggers")
        triggers = service.list_triggers(session, actor=actor, app_id=app_id)
        deliveries = service.list_deliveries(session, actor=actor, app_id=app_id, limit=50)
        codes = last_status_codes(session, [d.id for d in deliveries])
        tables = [t.name for t in schema.list_tables(session, actor=actor, app_id=app_id)]
        fns = [f.name for f in functions.list_functions(session, actor=actor, app_id=app_id)]
    context.update(
        csrf_token=user.csrf_token,
        triggers=triggers,
        trigger_names={t.id: t.name for t in triggers},
        deliveries=deliveries,
        codes=codes,
        tables=tables,
        function_names=fns,
        events=[e.value for e in TriggerEvent],
        targets=[k.value for k in TargetKind],
        created=created,
        form=form or {"max_attempts": "8"},
        problems=problems or {},
        message=message,
        done=done,
    )
    return render(request, "console/baas_triggers.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def triggers_page(request: Request, user: ConsoleStaff, app_id: Id, done: str = "") -> Response:
    return _page(request, user, app_id, done=done if done in DONE else None)


@router.post("", response_class=HTMLResponse)
def create_trigger(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: Annotated[str, Form(max_length=63)],
    event: Annotated[TriggerEvent, Form()],
    target_kind: Annotated[TargetKind, Form()],
    table_name: Annotated[str, Form(max_length=63)] = "",
    filter: Annotated[str, Form(max_length=8000)] = "",
    cron: Annotated[str, Form(max_length=100)] = "",
    function_name: Annotated[str, Form(max_length=63)] = "",
    webhook_url: Annotated[str, Form(max_length=500)] = "",
    max_attempts: Annotated[int, Form(ge=1, le=100)] = 8,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Create; the answer (not a redirect) shows the trigger's secret, once."""
    check_csrf(request, user, csrf)
    form = {"name": name, "event": event.value, "target_kind": target_kind.value,
            "table_name": table_name, "filter": filter, "cron": cron,
            "function_name": function_name, "webhook_url": webhook_url,
            "max_attempts": str(max_attempts)}  # fmt: skip
    try:
        parsed = json.loads(filter) if filter.strip() else None
    except ValueError:
        return _page(request, user, app_id, form=form, problems={"filter": "JSON"}, status=422)
    spec = service.TriggerSpec(
        name=name.strip(),
        event=event,
        target_kind=target_kind,
        table_name=table_name or None,
        filter=parsed if isinstance(parsed, dict) else None,
        cron=cron.strip() or None,
        function_name=function_name or None,
        webhook_url=webhook_url.strip() or None,
        max_attempts=max_attempts,
    )
    try:
        with unit_of_work() as session:
            trigger, secret = service.create_trigger(
                session, actor=_actor(request, user), app_id=app_id, spec=spec
            )
            created: dict[str, Any] = {"name": trigger.name, "secret": secret}
            if trigger.event == TriggerEvent.INCOMING:
                base = get_settings().resolved_public_base_url
                created["incoming_url"] = f"{base}/api/v1/baas/incoming/{trigger.id}"
    except DomainError as exc:
        return _page(
            request,
            user,
            app_id,
            form=form,
            problems=problems_of(request, exc),
            message=refusal_of(request, exc),
            status=422,
        )
    return _page(request, user, app_id, created=created, status=201)


@router.post("/{trigger_id}/state")
def set_state(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    trigger_id: Id,
    state: Annotated[Literal["enabled", "disabled"], Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def change() -> None:
        with unit_of_work() as session:
            service.set_enabled(
                session,
                actor=_actor(request, user),
                app_id=app_id,
                trigger_id=trigger_id,
                enabled=state == "enabled",
            )

    return back_to(f"/console/apps/{app_id}/triggers", change, done=state)


@router.post("/deliveries/{delivery_id}/redeliver")
def redeliver(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    delivery_id: Id,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)

    def send() -> None:
        with unit_of_work() as session:
            service.redeliver(
                session, actor=_actor(request, user), app_id=app_id, delivery_id=delivery_id
            )

    return back_to(f"/console/apps/{app_id}/triggers", send, done="redelivered")

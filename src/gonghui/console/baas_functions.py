"""The developer portal's cloud functions: the app's functions, an editor that deploys a new
version, the versions with a diff between any two and rollback, a test run with a JSON
event (its result, log and time), and the recent invocations with their logs (the same
services as ``/api/v1/baas/apps/{id}/functions``).

A test run is the app's server calling the function (:func:`apps.staff_caller`), logged
like any other invocation (source ``http``) under the console request's id.
"""

from __future__ import annotations

import difflib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from gonghui.baas import apps
from gonghui.baas.functions import invoke as invocations
from gonghui.baas.functions import service
from gonghui.baas.functions.models import Function
from gonghui.console.baas_apps import app_context, problems_of, refusal_of
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.types import Count, Id
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/apps/{app_id}/functions", include_in_schema=False)

STARTER = """def handler(event, context):
    context.log.info("hello " + str(event.get("name")))
    return {"greeting": "你好，" + str(event.get("name"))}
"""
RECENT = 20


def _url(app_id: int, rest: str = "") -> str:
    return f"/console/apps/{app_id}/functions{rest}"


def _list_page(
    request: Request,
    user: PageUser,
    app_id: int,
    *,
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "functions")
        found = service.list_functions(session, actor=actor, app_id=app_id)
    context.update(
        csrf_token=user.csrf_token,
        functions=found,
        form=form or {"source": STARTER, "timeout_s": "5", "memory_mb": "128"},
        problems=problems or {},
        message=message,
    )
    return render(request, "console/baas_functions.html", context, status=status)


@router.get("", response_class=HTMLResponse)
def functions_page(request: Request, user: ConsoleStaff, app_id: Id) -> Response:
    return _list_page(request, user, app_id)


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> list[tuple[str, str]]:
    """The unified diff of two sources as (kind, line) pairs: ``add``, ``del``, ``hunk`` or
    ``same`` (the template escapes the text)."""
    lines = difflib.unified_diff(
        old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""
    )
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out


def _function_page(
    request: Request,
    user: PageUser,
    app_id: int,
    name: str,
    *,
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    run: dict[str, Any] | None = None,
    event_text: str = "{}",
    diff: tuple[int, int] | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    invocations.flush_logs()  # what this process ran is in the list below
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "functions")
        fn = service.get_function(session, actor=actor, app_id=app_id, name=name)
        versions = service.versions(session, function=fn)
        recent = service.invocations(session, function=fn, limit=RECENT)
        current = service.current_source(session, function=fn)
    sources = {v.version: v.source for v in versions}
    diff_lines = None
    if diff is not None and diff[0] in sources and diff[1] in sources:
        a, b = diff
        diff_lines = unified_diff(sources[a], sources[b], f"v{a}", f"v{b}")
    context.update(
        csrf_token=user.csrf_token,
        fn=fn,
        versions=versions,
        recent=recent,
        form=form or _settings_form(fn, current),
        problems=problems or {},
        message=message,
        run=run,
        event_text=event_text,
        diff=diff,
        diff_lines=diff_lines,
        done=done,
        to_json=lambda v: json.dumps(v, ensure_ascii=False, indent=2),
    )
    return render(request, "console/baas_function.html", context, status=status)


def _settings_form(fn: Function, source: str) -> dict[str, str]:
    return {
        "name": fn.name,
        "source": source,
        "timeout_s": str(fn.timeout_s),
        "memory_mb": str(fn.memory_mb),
        "runs_as": fn.runs_as,
    }


@router.get("/{name}", response_class=HTMLResponse)
def function_page(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: str,
    a: Count | None = None,
    b: Count | None = None,
    done: str = "",
) -> Response:
    diff = (a, b) if a is not None and b is not None else None
    known = ("deployed", "rolled_back")
    return _function_page(
        request, user, app_id, name, diff=diff, done=done if done in known else None
    )


def _number(text: str, kind: type[float] | type[int], default: float) -> Any:
    try:
        return kind(text)
    except ValueError:
        return default if not text.strip() else -1  # refused by the service's own bounds


@router.post("", response_class=HTMLResponse)
def deploy(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: Annotated[str, Form(max_length=63)],
    source: Annotated[str, Form(max_length=256 * 1024)],
    timeout_s: Annotated[str, Form(max_length=20)] = "5",
    memory_mb: Annotated[str, Form(max_length=20)] = "128",
    runs_as: Annotated[str, Form(max_length=10)] = "caller",
    from_page: Annotated[str, Form(max_length=10)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Deploy ``source`` as the new current version of ``name`` (creating the function)."""
    check_csrf(request, user, csrf)
    name = name.strip()
    source = source.replace("\r\n", "\n")
    form = {"name": name, "source": source, "timeout_s": timeout_s, "memory_mb": memory_mb,
            "runs_as": runs_as}  # fmt: skip
    spec = service.FunctionSpec(
        source=source,
        timeout_s=_number(timeout_s, float, 5.0),
        memory_mb=_number(memory_mb, int, 128),
        runs_as=runs_as,
    )
    try:
        with unit_of_work() as session:
            service.deploy(
                session, actor=_actor(request, user), app_id=app_id, name=name, spec=spec
            )
    except DomainError as exc:
        found, message = problems_of(request, exc), refusal_of(request, exc)
        if from_page == "function":
            return _function_page(
                request, user, app_id, name, form=form, problems=found, message=message, status=422
            )
        return _list_page(
            request, user, app_id, form=form, problems=found, message=message, status=422
        )
    return RedirectResponse(_url(app_id, f"/{name}?done=deployed"), status_code=303)


@router.post("/{name}/rollback", response_class=HTMLResponse)
def rollback(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: str,
    version: Annotated[Count, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    with unit_of_work() as session:
        service.rollback(
            session, actor=_actor(request, user), app_id=app_id, name=name, version=version
        )
    return RedirectResponse(_url(app_id, f"/{name}?done=rolled_back"), status_code=303)


@router.post("/{name}/invoke", response_class=HTMLResponse)
async def trial_run(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: str,
    event: Annotated[str, Form(max_length=64 * 1024)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Run the current version with ``event`` (JSON) and show what came of it."""
    check_csrf(request, user, csrf)
    actor = _actor(request, user)
    try:
        parsed = json.loads(event) if event.strip() else None
    except ValueError:
        run: dict[str, Any] = {"bad_event": True}
        return _function_page(request, user, app_id, name, run=run, event_text=event)

    def call() -> dict[str, Any]:
        with unit_of_work(read_only=True) as session:
            caller = apps.staff_caller(session, actor=actor, app_id=app_id)
            service.get_function(session, actor=actor, app_id=app_id, name=name)
        done = invocations.invoke(caller=caller, name=name, event=parsed)
        outcome = done.outcome
        return {
            "status": outcome.status,
            "result": outcome.value if outcome.status == "ok" else None,
            "error": outcome.error,
            "logs": outcome.logs,
            "duration_ms": round(outcome.duration_ms, 1),
            "cold": outcome.cold,
            "request_id": done.request_id,
        }

    run = await run_in_threadpool(call)
    return await run_in_threadpool(
        lambda: _function_page(request, user, app_id, name, run=run, event_text=event)
    )

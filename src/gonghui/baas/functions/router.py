"""HTTP: deploying and inspecting functions (staff with the developer role) and invoking
them (app callers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, status

from gonghui.baas.caller import AppCaller
from gonghui.baas.functions import gallery, service
from gonghui.baas.functions import invoke as invocations
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.models import Function
from gonghui.baas.functions.schemas import (
    FunctionDeploy,
    FunctionDetail,
    FunctionRead,
    GalleryInstall,
    GalleryItem,
    InvocationRead,
    InvokeResult,
    Rollback,
    SecretsPut,
    VersionRead,
)
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.errors import DomainError, NotFound
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1/baas/apps/{app_id}/functions", tags=["functions"])
gallery_router = APIRouter(prefix="/api/v1/baas/function-gallery", tags=["functions"])


class FunctionFailed(DomainError):
    """The function ran and raised, crashed or hit a limit."""

    status_code = 502


class FunctionTimedOut(DomainError):
    status_code = 504


def function_read(function: Function) -> FunctionRead:
    return FunctionRead(
        id=function.id,
        name=function.name,
        current_version=function.current_version,
        runs_as=function.runs_as,
        timeout_s=function.timeout_s,
        memory_mb=function.memory_mb,
        env=dict(function.env or {}),
        allowed_hosts=list(function.allowed_hosts or []),
        secret_names=service.secret_names(function),
    )


@router.get("")
def list_functions(app_id: Id, staff: CurrentStaff, session: SessionDep) -> list[FunctionRead]:
    return [function_read(f) for f in service.list_functions(session, actor=staff, app_id=app_id)]


@router.put("/{name}", status_code=status.HTTP_201_CREATED)
def deploy(
    app_id: Id, name: str, body: FunctionDeploy, staff: CurrentStaff, session: SessionDep
) -> FunctionRead:
    """Deploy a new version (the function is created by its first deployment)."""
    spec = service.FunctionSpec(**body.model_dump())
    return function_read(service.deploy(session, actor=staff, app_id=app_id, name=name, spec=spec))


@router.get("/{name}")
def get_function(app_id: Id, name: str, staff: CurrentStaff, session: SessionDep) -> FunctionDetail:
    fn = service.get_function(session, actor=staff, app_id=app_id, name=name)
    return FunctionDetail(
        **function_read(fn).model_dump(),
        versions=[VersionRead.model_validate(v) for v in service.versions(session, function=fn)],
    )


@router.post("/{name}/rollback")
def rollback(
    app_id: Id, name: str, body: Rollback, staff: CurrentStaff, session: SessionDep
) -> FunctionRead:
    fn = service.rollback(session, actor=staff, app_id=app_id, name=name, version=body.version)
    return function_read(fn)


@gallery_router.get("")
def list_gallery(staff: CurrentStaff) -> list[GalleryItem]:
    """Ready-made functions, each with the event that runs it."""
    return [
        GalleryItem(
            name=g.name,
            title=g.title,
            description=g.description,
            event=str(g.event),
            env=g.env,
            source=g.source,
        )
        for g in gallery.GALLERY.values()
    ]


@router.post("/{name}/install", status_code=status.HTTP_201_CREATED)
def install_from_gallery(
    app_id: Id, name: str, body: GalleryInstall, staff: CurrentStaff, session: SessionDep
) -> FunctionRead:
    """Deploy a gallery function as ``name`` and the trigger that runs it."""
    fn = gallery.install(
        session,
        actor=staff,
        app_id=app_id,
        template=body.template,
        name=name,
        env=body.env,
        with_trigger=body.with_trigger,
    )
    return function_read(fn)


@router.put("/{name}/secrets")
def put_secrets(
    app_id: Id, name: str, body: SecretsPut, staff: CurrentStaff, session: SessionDep
) -> FunctionRead:
    fn = service.set_secrets(session, actor=staff, app_id=app_id, name=name, secrets=body.secrets)
    return function_read(fn)


def _logs_flushed() -> None:
    # Before the request's session takes its snapshot: what this process ran is visible.
    invocations.flush_logs()


@router.get("/{name}/invocations")
def list_invocations(
    _flushed: Annotated[None, Depends(_logs_flushed)],
    app_id: Id,
    name: str,
    staff: CurrentStaff,
    session: SessionDep,
    status: str | None = None,
    request_id: str | None = None,
    before_id: Id | None = None,
    limit: Count = 50,
) -> list[InvocationRead]:
    fn = service.get_function(session, actor=staff, app_id=app_id, name=name)
    rows = service.invocations(
        session,
        function=fn,
        status=status,
        request_id=request_id,
        before_id=before_id,
        limit=limit,
    )
    return [InvocationRead.model_validate(r) for r in rows]


@router.post("/{name}/invoke")
def invoke(
    app_id: Id,
    name: str,
    caller: AppCaller,
    event: Annotated[Any, Body()] = None,
) -> InvokeResult:
    """Run the function with the JSON body as its event, as the app key's holder (and the
    signed-in user, when a Bearer token is sent)."""
    if caller.app_id != app_id:
        raise NotFound(FunctionsError.NOT_FOUND, f"function {name} not found")
    done = invocations.invoke(caller=caller, name=name, event=event)
    outcome = done.outcome
    details = {"request_id": done.request_id, "error": outcome.error, "logs": outcome.logs}
    if outcome.status == "timeout":
        raise FunctionTimedOut(FunctionsError.TIMEOUT, "the function ran out of time", details)
    if outcome.status != "ok":
        message = (outcome.error or {}).get("message") or "the function failed"
        raise FunctionFailed(FunctionsError.FAILED, str(message), details)
    return InvokeResult(
        request_id=done.request_id,
        result=outcome.value,
        duration_ms=round(outcome.duration_ms, 3),
        logs=outcome.logs,
    )

"""Deploying and managing functions: versions, rollback, environment and secrets, logs.

Running them is :mod:`gonghui.baas.functions.invoke`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.audit import service as audit
from gonghui.baas.apps import get_app
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.models import Function, FunctionVersion, Invocation
from gonghui.baas.functions.secrets import seal_secrets, unseal_secrets
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import InvalidInput, NotFound, field_error
from gonghui.tenancy import Actor

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_HOST = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
MAX_ALLOWED_HOSTS = 20
MAX_SOURCE_BYTES = 256 * 1024
MAX_TIMEOUT_S = 60.0
MEMORY_MB = (64, 1024)
# The change-feed topic of what running a function needs (key: definition_key), held per
# process by gonghui.baas.functions.invoke.
DEFINITION_TOPIC = "baas.function"


@dataclass(frozen=True)
class FunctionSpec:
    source: str
    timeout_s: float = 5.0
    memory_mb: int = 128
    runs_as: str = "caller"
    env: dict[str, str] | None = None
    allowed_hosts: list[str] | None = None


def _bad(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(code, message, [field_error(field, code, message)])


def check_source(source: str) -> None:
    """Refuse code that cannot run: too big, not Python, or no ``handler``."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise _bad("source", FunctionsError.BAD_SOURCE, "the source is larger than 256 KiB")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise _bad(
            "source", FunctionsError.BAD_SOURCE, f"syntax error line {exc.lineno}: {exc.msg}"
        ) from exc
    handlers = [
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "handler"
    ]
    if not handlers or len(handlers[0].args.args) != 2:
        raise _bad(
            "source", FunctionsError.BAD_SOURCE, "define handler(event, context) at top level"
        )


def _check_spec(spec: FunctionSpec) -> None:
    check_source(spec.source)
    if not 0.1 <= spec.timeout_s <= MAX_TIMEOUT_S:
        raise _bad("timeout_s", FunctionsError.BAD_LIMITS, "between 0.1 and 60 seconds")
    if not MEMORY_MB[0] <= spec.memory_mb <= MEMORY_MB[1]:
        raise _bad("memory_mb", FunctionsError.BAD_LIMITS, "between 64 and 1024 MB")
    if spec.runs_as not in ("caller", "server"):
        raise _bad("runs_as", FunctionsError.BAD_LIMITS, "caller or server")
    hosts = spec.allowed_hosts or []
    if len(hosts) > MAX_ALLOWED_HOSTS or not all(_HOST.match(h) for h in hosts):
        raise _bad(
            "allowed_hosts",
            FunctionsError.BAD_LIMITS,
            f"up to {MAX_ALLOWED_HOSTS} host names, e.g. api.example.com or *.example.com",
        )


def find_function(session: Session, *, app_id: int, name: str) -> Function:
    fn = session.scalar(select(Function).where(Function.app_id == app_id, Function.name == name))
    if fn is None:
        raise NotFound(FunctionsError.NOT_FOUND, f"function {name} not found")
    return fn


def get_function(session: Session, *, actor: Actor, app_id: int, name: str) -> Function:
    get_app(session, actor=actor, app_id=app_id)
    return find_function(session, app_id=app_id, name=name)


def list_functions(session: Session, *, actor: Actor, app_id: int) -> list[Function]:
    get_app(session, actor=actor, app_id=app_id)
    return list(
        session.scalars(select(Function).where(Function.app_id == app_id).order_by(Function.name))
    )


def deploy(
    session: Session, *, actor: Actor, app_id: int, name: str, spec: FunctionSpec
) -> Function:
    """Deploy ``spec`` as the new current version of ``name`` (creating the function)."""
    app = get_app(session, actor=actor, app_id=app_id)
    if not _NAME.match(name):
        raise _bad("name", FunctionsError.BAD_NAME, "lower-case letters, digits, - and _")
    _check_spec(spec)
    fn = session.scalar(select(Function).where(Function.app_id == app.id, Function.name == name))
    if fn is None:
        fn = Function(app_id=app.id, org_id=app.org_id, name=name, current_version=0)
        session.add(fn)
        session.flush()
    latest = session.scalar(
        select(func.max(FunctionVersion.version)).where(FunctionVersion.function_id == fn.id)
    )
    version = (latest or 0) + 1
    session.add(
        FunctionVersion(
            function_id=fn.id, version=version, source=spec.source, created_by=actor.user_id
        )
    )
    fn.current_version = version
    fn.timeout_s = spec.timeout_s
    fn.memory_mb = spec.memory_mb
    fn.runs_as = spec.runs_as
    if spec.env is not None:
        fn.env = dict(spec.env)
    if spec.allowed_hosts is not None:
        fn.allowed_hosts = sorted(set(spec.allowed_hosts))
    fn.updated_at = now()
    session.flush()
    _changed(session, fn)
    audit.record(
        session,
        actor=actor,
        action="functions.deploy",
        org_id=app.org_id,
        subject_type="function",
        subject_id=fn.id,
        details={"app_id": app.id, "name": name, "version": version},
    )
    return fn


def definition_key(app_id: int, name: str) -> str:
    return f"{app_id}/{name}"


def _changed(session: Session, fn: Function) -> None:
    """What running ``fn`` needs changed: every process's held definition goes (see
    :mod:`gonghui.invalidation`)."""
    invalidation.changed(session, DEFINITION_TOPIC, definition_key(fn.app_id, fn.name))


def versions(session: Session, *, function: Function) -> list[FunctionVersion]:
    return list(
        session.scalars(
            select(FunctionVersion)
            .where(FunctionVersion.function_id == function.id)
            .order_by(FunctionVersion.version.desc())
        )
    )


def rollback(session: Session, *, actor: Actor, app_id: int, name: str, version: int) -> Function:
    fn = get_function(session, actor=actor, app_id=app_id, name=name)
    exists = session.scalar(
        select(FunctionVersion.id).where(
            FunctionVersion.function_id == fn.id, FunctionVersion.version == version
        )
    )
    if exists is None:
        raise NotFound(FunctionsError.VERSION_NOT_FOUND, f"version {version} not found")
    previous = fn.current_version
    fn.current_version = version
    fn.updated_at = now()
    _changed(session, fn)
    audit.record(
        session,
        actor=actor,
        action="functions.rollback",
        org_id=fn.org_id,
        subject_type="function",
        subject_id=fn.id,
        details={"from": previous, "to": version},
    )
    return fn


def set_secrets(
    session: Session, *, actor: Actor, app_id: int, name: str, secrets: dict[str, str]
) -> Function:
    """Replace the function's secrets; values are never shown again."""
    fn = get_function(session, actor=actor, app_id=app_id, name=name)
    fn.secrets_enc = seal_secrets(fn.id, secrets) if secrets else None
    fn.updated_at = now()
    _changed(session, fn)
    audit.record(
        session,
        actor=actor,
        action="functions.secrets",
        org_id=fn.org_id,
        subject_type="function",
        subject_id=fn.id,
        details={"names": sorted(secrets)},
    )
    return fn


def secret_names(function: Function) -> list[str]:
    return sorted(unseal_secrets(function.id, function.secrets_enc))


def current_source(session: Session, *, function: Function) -> str:
    source = session.scalar(
        select(FunctionVersion.source).where(
            FunctionVersion.function_id == function.id,
            FunctionVersion.version == function.current_version,
        )
    )
    if source is None:
        raise NotFound(FunctionsError.VERSION_NOT_FOUND, "the current version is missing")
    return source


def invocations(
    session: Session,
    *,
    function: Function,
    status: str | None = None,
    request_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Invocation]:
    stmt = select(Invocation).where(Invocation.function_id == function.id)
    if status:
        stmt = stmt.where(Invocation.status == status)
    if request_id:
        stmt = stmt.where(Invocation.request_id == request_id)
    if before_id:
        stmt = stmt.where(Invocation.id < before_id)
    return list(session.scalars(stmt.order_by(Invocation.id.desc()).limit(min(max(limit, 1), 200))))


def purge_invocations(session: Session, *, keep_days: int) -> int:
    """Drop invocation logs older than the retention period."""
    cutoff = now() - timedelta(days=keep_days)
    return rowcount(session.execute(delete(Invocation).where(Invocation.at < cutoff)))

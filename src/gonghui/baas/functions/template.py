"""Functions and triggers in app templates and app copies (see :mod:`gonghui.baas.copy`).

A copy carries each function's current source, limits, environment and the names of its
secrets (not their values: the new app's developer sets them), and each trigger's
definition; a webhook or incoming trigger gets a new secret. Invocation logs and
deliveries are data and stay behind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.baas.copy import ConfigSection, register_section
from gonghui.baas.functions import service as functions
from gonghui.baas.functions.models import Function
from gonghui.baas.triggers import service as triggers
from gonghui.baas.triggers.models import TargetKind, Trigger, TriggerEvent
from gonghui.tenancy import Actor


def export_functions(session: Session, app_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Function).where(Function.app_id == app_id).order_by(Function.name)
    )
    return [
        {
            "name": fn.name,
            "source": functions.current_source(session, function=fn),
            "timeout_s": fn.timeout_s,
            "memory_mb": fn.memory_mb,
            "runs_as": fn.runs_as,
            "env": dict(fn.env or {}),
            "allowed_hosts": list(fn.allowed_hosts or []),
            "secret_names": functions.secret_names(fn),
        }
        for fn in rows
    ]


def apply_functions(
    session: Session, actor: Actor, app_id: int, items: list[dict[str, Any]]
) -> None:
    for item in items:
        spec = functions.FunctionSpec(
            source=str(item["source"]),
            timeout_s=float(item.get("timeout_s", 5.0)),
            memory_mb=int(item.get("memory_mb", 128)),
            runs_as=str(item.get("runs_as", "caller")),
            env=dict(item.get("env") or {}),
            allowed_hosts=list(item.get("allowed_hosts") or []),
        )
        functions.deploy(session, actor=actor, app_id=app_id, name=str(item["name"]), spec=spec)


def export_triggers(session: Session, app_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Trigger).where(Trigger.app_id == app_id).order_by(Trigger.id))
    return [
        {
            "name": t.name,
            "event": t.event,
            "target_kind": t.target_kind,
            "table_name": t.table_name,
            "filter": t.filter,
            "cron": t.cron,
            "function_name": t.function_name,
            "webhook_url": t.webhook_url,
            "max_attempts": t.max_attempts,
            "enabled": t.enabled,
        }
        for t in rows
    ]


def apply_triggers(
    session: Session, actor: Actor, app_id: int, items: list[dict[str, Any]]
) -> None:
    for item in items:
        spec = triggers.TriggerSpec(
            name=str(item["name"]),
            event=TriggerEvent(item["event"]),
            target_kind=TargetKind(item["target_kind"]),
            table_name=item.get("table_name"),
            filter=item.get("filter"),
            cron=item.get("cron"),
            function_name=item.get("function_name"),
            webhook_url=item.get("webhook_url"),
            max_attempts=int(item.get("max_attempts", 8)),
        )
        trigger, _ = triggers.create_trigger(session, actor=actor, app_id=app_id, spec=spec)
        trigger.enabled = bool(item.get("enabled", True))


register_section(ConfigSection("functions", export_functions, apply_functions))
register_section(ConfigSection("triggers", export_triggers, apply_triggers))

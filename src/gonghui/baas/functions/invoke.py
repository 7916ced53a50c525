"""Running a function: load it, run it in the warm sandbox pool, answer its platform calls,
store the invocation's log.

An invocation owns its units of work, as a job does: loading the function, each platform
call the code makes, and the log row are separate short transactions. No database
transaction stays open while user code runs (on SQLite that would hold the write lock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from gonghui.baas.functions import service
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.models import Invocation
from gonghui.baas.functions.pool import PoolConfig, WorkerPool
from gonghui.baas.functions.sandbox import Limits, Outcome, SdkRefusal
from gonghui.baas.functions.secrets import unseal_secrets
from gonghui.baas.permissions import Caller
from gonghui.db import unit_of_work
from gonghui.settings import get_settings

MAX_CALL_DEPTH = 3

_pool: WorkerPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> WorkerPool:
    global _pool
    with _pool_lock:
        if _pool is None:
            s = get_settings()
            _pool = WorkerPool(
                PoolConfig(
                    python=s.functions_python,
                    min_workers=s.functions_min_workers,
                    max_workers=s.functions_max_workers,
                    per_key_max=s.functions_per_app_max,
                    idle_s=s.functions_idle_s,
                    recycle_after=s.functions_recycle_after,
                    trust_unsandboxed=s.functions_trust_unsandboxed,
                )
            )
        return _pool


def close_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
        _pool = None


@dataclass(frozen=True)
class InvocationResult:
    invocation_id: int
    outcome: Outcome


def invoke(
    *, caller: Caller, name: str, event: Any, source_kind: str = "http", depth: int = 0
) -> InvocationResult:
    """Run the current version of ``name`` in the caller's app with ``event``."""
    with unit_of_work(read_only=True) as session:
        fn = service.find_function(session, app_id=caller.app_id, name=name)
        source = service.current_source(session, function=fn)
        secrets = unseal_secrets(fn.id, fn.secrets_enc)
        function_id, version, env = fn.id, fn.current_version, dict(fn.env or {})
        limits = Limits(timeout_s=fn.timeout_s, cpu_s=fn.timeout_s, memory_mb=fn.memory_mb)
        runs_as_server = fn.runs_as == "server"
    acting = replace(caller, server=True) if runs_as_server else caller
    context = {
        "app": caller.app_id,
        "function": name,
        "caller": {"user_id": caller.user_id, "server": caller.server},
        "env": env,
        "secrets": secrets,
    }
    outcome = get_pool().invoke(
        key=f"app:{caller.app_id}",
        source=source,
        event=event,
        context=context,
        sdk=PlatformCalls(acting, depth),
        limits=limits,
    )
    with unit_of_work() as session:
        row = Invocation(
            function_id=function_id,
            version=version,
            source=source_kind,
            status=outcome.status,
            cold=outcome.cold,
            duration_ms=round(outcome.duration_ms, 3),
            peak_memory_kb=outcome.peak_rss_kb,
            caller_user_id=caller.user_id,
            result=outcome.value if outcome.status == "ok" else None,
            error=outcome.error,
            logs=outcome.logs,
        )
        session.add(row)
        session.flush()
        invocation_id = row.id
    return InvocationResult(invocation_id=invocation_id, outcome=outcome)


class PlatformCalls:
    """Answers the SDK calls of one invocation, always within the invoking app: a table or
    function name is resolved in ``caller.app_id`` only, so no call reaches another app."""

    def __init__(self, caller: Caller, depth: int) -> None:
        self.caller = caller
        self.depth = depth

    def __call__(self, op: str, args: dict[str, Any]) -> Any:
        from gonghui.baas.records import query, write

        caller = self.caller
        if op == "functions.invoke":
            if self.depth + 1 >= MAX_CALL_DEPTH:
                raise SdkRefusal(FunctionsError.CALL_DEPTH, "functions call each other too deep")
            nested = invoke(
                caller=caller,
                name=str(args.get("function")),
                event=args.get("event"),
                source_kind="function",
                depth=self.depth + 1,
            )
            if nested.outcome.status != "ok":
                raise SdkRefusal(FunctionsError.FAILED, f"{args.get('function')} failed")
            return nested.outcome.value
        table = str(args.get("table"))
        read_only = op in ("records.get", "records.query")
        with unit_of_work(read_only=read_only) as session:
            if op == "records.create":
                return write.create_records(
                    session, caller=caller, table=table, items=[args.get("record") or {}]
                )[0]
            if op == "records.get":
                return query.get_record(
                    session, caller=caller, table=table, record_id=int(args["id"])
                )
            if op == "records.update":
                return write.update_record(
                    session,
                    caller=caller,
                    table=table,
                    record_id=int(args["id"]),
                    ops={"set": args.get("changes") or {}},
                )
            if op == "records.delete":
                write.delete_record(session, caller=caller, table=table, record_id=int(args["id"]))
                return None
            if op == "records.query":
                page = query.list_records(
                    session,
                    caller=caller,
                    table=table,
                    where=args.get("where"),
                    sort=args.get("sort"),
                    limit=int(args.get("limit") or 50),
                    cursor=args.get("cursor"),
                )
                return {"items": page.items, "next_cursor": page.next_cursor}
        raise SdkRefusal(FunctionsError.UNKNOWN_OP, f"unknown platform call {op}")

"""Running a function: load it, run it in the warm sandbox pool, answer its platform calls,
store the invocation's log.

An invocation owns its units of work, as a job does: loading the function, each platform
call the code makes, and the log row are separate short transactions. No database
transaction stays open while user code runs (on SQLite that would hold the write lock).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.baas.functions import egress, files_ops, members_ops, service
from gonghui.baas.functions.errors import FunctionsError
from gonghui.baas.functions.models import Invocation
from gonghui.baas.functions.pool import PoolConfig, WorkerPool
from gonghui.baas.functions.sandbox import Limits, Outcome, SdkRefusal
from gonghui.baas.functions.secrets import unseal_secrets
from gonghui.baas.permissions import Caller
from gonghui.baas.records import query, write
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.observability import request_id_var
from gonghui.settings import get_settings

MAX_CALL_DEPTH = 3
log = logging.getLogger("gonghui.functions")

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
class Definition:
    """What running a function needs, cached briefly so that a warm call reads nothing."""

    function_id: int
    version: int
    source: str
    env: dict[str, str]
    secrets: dict[str, str]
    limits: Limits
    runs_as_server: bool
    allowed_hosts: tuple[str, ...]


# Like app keys (baas.apps), definitions are held per process under a change-feed topic
# (gonghui.invalidation; key ``<app id>/<name>``): a deploy takes effect at its commit in
# this process and within about a second in every other. The TTL is a safety net only.
DEFINITION_TTL_S = 300.0
_definitions: invalidation.TopicCache[tuple[int, str], Definition] = invalidation.TopicCache(
    service.DEFINITION_TOPIC,
    key_of=lambda key, _: service.definition_key(*key),
    ttl_s=DEFINITION_TTL_S,
)


def _definition(app_id: int, name: str) -> Definition:
    key = (app_id, name)
    hit = _definitions.get(key)
    if hit is not None:
        return hit
    with unit_of_work(read_only=True) as session:
        return _definitions.read_through(
            session, key, lambda: _read_definition(session, app_id=app_id, name=name)
        )


def _read_definition(session: Session, *, app_id: int, name: str) -> Definition:
    fn = service.find_function(session, app_id=app_id, name=name)
    return Definition(
        function_id=fn.id,
        version=fn.current_version,
        source=service.current_source(session, function=fn),
        env=dict(fn.env or {}),
        secrets=unseal_secrets(fn.id, fn.secrets_enc),
        limits=Limits(timeout_s=fn.timeout_s, cpu_s=fn.timeout_s, memory_mb=fn.memory_mb),
        runs_as_server=fn.runs_as == "server",
        allowed_hosts=tuple(fn.allowed_hosts or ()),
    )


@dataclass(frozen=True)
class InvocationResult:
    request_id: str | None
    outcome: Outcome


def invoke(
    *, caller: Caller, name: str, event: Any, source_kind: str = "http", depth: int = 0
) -> InvocationResult:
    """Run the current version of ``name`` in the caller's app with ``event``."""
    fn = _definition(caller.app_id, name)
    acting = replace(caller, server=True) if fn.runs_as_server else caller
    context = {
        "app": caller.app_id,
        "function": name,
        "caller": {"user_id": caller.user_id, "server": caller.server},
        "env": fn.env,
        "secrets": fn.secrets,
    }
    outcome = get_pool().invoke(
        key=f"app:{caller.app_id}",
        source=fn.source,
        event=event,
        context=context,
        sdk=PlatformCalls(acting, depth, fn.allowed_hosts),
        limits=fn.limits,
    )
    request_id = request_id_var.get()
    _logs.add(
        {
            "function_id": fn.function_id,
            "version": fn.version,
            "at": now(),
            "request_id": request_id,
            "source": source_kind,
            "status": outcome.status,
            "cold": outcome.cold,
            "duration_ms": round(outcome.duration_ms, 3),
            "peak_memory_kb": outcome.peak_rss_kb,
            "caller_user_id": caller.user_id,
            "result": outcome.value if outcome.status == "ok" else None,
            "error": outcome.error,
            "logs": outcome.logs,
        }
    )
    return InvocationResult(request_id=request_id, outcome=outcome)


class LogWriter:
    """Writes invocation logs in batches from a thread of its own, so that a warm call
    costs no write transaction. A crash loses at most the last ``interval_s`` of logs
    (logs only: what the function itself wrote went through its own transactions)."""

    def __init__(self, interval_s: float = 0.1, batch: int = 500) -> None:
        self.interval_s = interval_s
        self.batch = batch
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        # The thread sleeps until a row is pending (it never wakes an idle server), then
        # gathers rows for up to interval_s, or until a batch is full.
        self._has_rows = threading.Event()
        self._full = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(row)
            first = len(self._pending) == 1
            full = len(self._pending) >= self.batch
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="function-logs", daemon=True
                )
                self._thread.start()
        if first:
            self._has_rows.set()
        if full:
            self._full.set()

    def flush(self) -> int:
        """Write what is pending now; returns how many rows."""
        with self._flush_lock:
            with self._lock:
                rows, self._pending = self._pending, []
            if rows:
                with unit_of_work() as session:
                    session.execute(insert(Invocation), rows)
            return len(rows)

    def _loop(self) -> None:
        while True:
            self._has_rows.wait()
            self._full.wait(self.interval_s)
            # Cleared before the flush takes the rows: a row added after the flush is the
            # first of the next batch and sets _has_rows again.
            self._has_rows.clear()
            self._full.clear()
            try:
                self.flush()
            except Exception:
                log.exception("writing function logs failed")


_logs = LogWriter()


def flush_logs() -> int:
    return _logs.flush()


class PlatformCalls:
    """Answers the SDK calls of one invocation, always within the invoking app: a table or
    function name is resolved in ``caller.app_id`` only, so no call reaches another app."""

    def __init__(self, caller: Caller, depth: int, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.caller = caller
        self.depth = depth
        self.allowed_hosts = allowed_hosts

    def __call__(self, op: str, args: dict[str, Any]) -> Any:
        caller = self.caller
        if op == "http.request":
            return egress.request(args, allowed_hosts=self.allowed_hosts)
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
        with unit_of_work(read_only=read_only) as session:  # one transaction per call
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
        if op in files_ops.OPS:
            with unit_of_work(read_only=op in files_ops.READ_ONLY) as session:
                return files_ops.OPS[op](session, caller, args)
        if op in members_ops.OPS:
            with unit_of_work() as session:
                return members_ops.OPS[op](session, caller, args)
        raise SdkRefusal(FunctionsError.UNKNOWN_OP, f"unknown platform call {op}")

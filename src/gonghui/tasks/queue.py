"""Deferring work with its transaction, and running it: the queue's rules.

A task is a row written in the caller's transaction (:func:`defer`): a rolled-back
change leaves none, a committed one always has one, and the row stays until its work is
done or dead-lettered. The row, not the broker, is the queue's state, the same on SQLite
and on PostgreSQL, with or without Redis:

- **Sending.** A due row is claimed with a fresh token and a lease, and a message naming
  the row and the token is sent to the broker (:mod:`gonghui.tasks.broker`, Dramatiq). A
  process that runs a worker claims what it defers as it writes it and sends it as the
  transaction commits; every worker's relay (:func:`relay_due`, every ``task_poll_s``)
  sends the rest: rows deferred by processes that run no worker (API processes of a
  deployment with separate workers), rows whose delay or retry time has come, and rows
  whose send was lost (a broker that lost its data, a worker killed with its messages)
  once their lease has passed.
- **Running.** A message runs only if its row still holds its token (a compare-and-set
  that also counts the attempt and extends the lease over the run's time limit): a
  message sent twice, or one overtaken by a newer send, does nothing. Work is delivered
  at least once, so every task function is idempotent.
- **Outcome.** A function that returns is done. One that raises is retried after an
  exponential backoff (or the delay of a :class:`Retry`) until its ``max_attempts``,
  then dead-lettered: kept with its last error for an operator, who may run it again.
  A run cut short by a crash counts as an attempt too.
- **Slots.** A kind may name a slot per task (deliveries: their app) and how many of a
  slot's tasks one worker runs at once. A message whose slot is full is parked in the
  worker, untouched (no attempt counted), and sent again as soon as one of that slot's
  runs ends, so one app whose endpoint hangs holds only its own share of the threads
  while they run the rest.
- **Groups.** A kind registered with :func:`grouped` is deferred row by row like any other
  but run in groups: it is never sent at commit, and the rows a relay's pass claims (those
  of every transaction since the last pass, up to :data:`GROUP_MAX`) go as one message;
  one call of its function takes all their arguments, in one run whose outcome is each
  row's. So a burst of small tasks (a notification per prize won) costs a few
  transactions per group, not per task, for at most ``task_poll_s`` of latency. A
  grouped kind may give way (``hold_while``): relays leave its rows queued while members'
  hot writes keep the host busy, each row a bounded time (coupon sends).
- **Periodic work** (:func:`periodic`) is one row per kind, re-armed by every worker's
  clock when its window comes: it runs once per window however many workers there are.

Dramatiq's own retries are off: the retry schedule and the dead letters live in the
database with the work they belong to, so they survive a broker restart, are the same in
the embedded default (which has no broker process), and operators read them in the
console.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, ParamSpec, TypeVar

from sqlalchemy import ColumnElement, and_, delete, exists, insert, or_, select, true, update
from sqlalchemy.orm import Session

from gonghui.clock import now
from gonghui.db import on_commit, rowcount, unit_of_work, upsert_insert
from gonghui.observability import request_id_var, request_scope
from gonghui.settings import get_settings
from gonghui.tasks.models import Task, TaskStatus, Worker

log = logging.getLogger("gonghui.tasks")

P = ParamSpec("P")
F = TypeVar("F", bound=Callable[[], object])

BACKOFF_CAP_S = 3600.0
# Time a run may take beyond its limit (the limit's own exception, writing the outcome)
# before its row may be sent again.
GRACE_S = 30.0
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Kind:
    """A kind of task: its function, how often it may be tried, how long one run may take,
    and what happens when it is dead-lettered."""

    name: str
    run: Callable[..., object]
    max_attempts: int
    time_limit_s: float
    on_dead: Callable[[dict[str, Any], str], None] | None = None
    # Periodic kinds: seconds between runs.
    every_s: Callable[[], float] | None = None
    # The slot a task takes (from its arguments; None: none), and how many tasks of one
    # slot a worker runs at once.
    slot: Callable[[dict[str, Any]], str | None] | None = None
    slot_limit: Callable[[], int] | None = None
    # Run in groups: ``run(batch)`` takes the arguments of every row of a group.
    grouped: bool = False
    # Relays leave the kind's rows queued while this says so, a row at most ``hold_s``
    # past its time (see :func:`grouped`).
    hold_while: Callable[[], bool] | None = None
    hold_s: float = 0.0

    def slot_of(self, args: dict[str, Any]) -> str | None:
        return self.slot(args) if self.slot is not None else None


_kinds: dict[str, Kind] = {}


def kinds() -> dict[str, Kind]:
    return dict(_kinds)


def task(
    name: str,
    *,
    max_attempts: int = 5,
    time_limit_s: float = 300.0,
    on_dead: Callable[[dict[str, Any], str], None] | None = None,
    slot: Callable[[dict[str, Any]], str | None] | None = None,
    slot_limit: Callable[[], int] | None = None,
) -> Callable[[Callable[P, object]], Callable[P, object]]:
    """Register a function as the kind of task ``name``; its keyword arguments are JSON.
    ``on_dead(args, error)`` runs once the task is dead-lettered; at most ``slot_limit()``
    tasks of one ``slot(args)`` run at once in a worker."""

    def register(fn: Callable[P, object]) -> Callable[P, object]:
        _register(
            Kind(name, fn, max_attempts, time_limit_s, on_dead, slot=slot, slot_limit=slot_limit)
        )
        return fn

    return register


# The most rows one group runs (a relay's pass claims no more).
GROUP_MAX = 100


def grouped(
    name: str,
    *,
    max_attempts: int = 5,
    time_limit_s: float = 300.0,
    on_dead: Callable[[dict[str, Any], str], None] | None = None,
    hold_while: Callable[[], bool] | None = None,
    hold_s: float = 0.0,
) -> Callable[[Callable[[list[dict[str, Any]]], object]], Callable[[list[dict[str, Any]]], object]]:
    """Register ``fn(batch)`` as the kind of task ``name``, run in groups: ``batch`` holds
    the keyword arguments of up to :data:`GROUP_MAX` of its tasks, in the order deferred.
    One run is every task's: done together, or (the function raised) each retried or
    dead-lettered by its own count. Each task is deferred as usual (:func:`defer`).

    Background work that gives way names ``hold_while`` (a cheap predicate, asked by
    every relay pass, such as :func:`gonghui.hotwrite.busy`): while it holds, relays leave
    the kind's rows queued, untouched (no attempt counted, no thread taken), except a row
    ``hold_s`` past its time, which goes as if nothing held it. :func:`run_due` (tests,
    the CLI) does not hold."""

    def register(fn: Callable[[list[dict[str, Any]]], object]) -> Callable[..., object]:
        _register(
            Kind(
                name,
                fn,
                max_attempts,
                time_limit_s,
                on_dead,
                grouped=True,
                hold_while=hold_while,
                hold_s=hold_s,
            )
        )
        return fn

    return register


def periodic(
    name: str, *, every_s: Callable[[], float], time_limit_s: float = 300.0
) -> Callable[[F], F]:
    """Register a function of no arguments to run once every ``every_s()`` seconds, on one
    worker of however many run (windows aligned to the epoch)."""

    def register(fn: F) -> F:
        _register(Kind(name, fn, 1, time_limit_s, every_s=every_s))
        return fn

    return register


def _register(kind: Kind) -> None:
    known = _kinds.get(kind.name)
    if known is not None and known.run is not kind.run:
        raise ValueError(f"task {kind.name!r} is registered twice")
    _kinds[kind.name] = kind


class Retry(Exception):
    """This attempt failed with ``error``; retry after ``after_s`` (default: the backoff)."""

    def __init__(self, error: str, *, after_s: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.after_s = after_s


class Taken(NamedTuple):
    """A row a run took: its id, arguments, the attempt this is, and its limit."""

    id: int
    args: dict[str, Any]
    attempts: int
    max_attempts: int


@dataclass(frozen=True)
class Run:
    task_id: int
    name: str
    attempt: int
    max_attempts: int
    token: str = ""
    # Every row the run is for (a grouped kind's group; else the one), as the run took
    # them, in its batch's order (each one's attempt and limit).
    rows: tuple[Taken, ...] = ()
    # Set once the run's own transaction has recorded it done (:func:`complete`).
    completed: threading.Event = field(default_factory=threading.Event, compare=False)

    @property
    def task_ids(self) -> tuple[int, ...]:
        return tuple(row.id for row in self.rows)


_current: ContextVar[Run | None] = ContextVar("gonghui_task", default=None)


def current() -> Run | None:
    """The task this code runs as, if any."""
    return _current.get()


def complete(session: Session, *, retry: Mapping[int, Retry] | None = None) -> None:
    """Record the running task done in ``session``'s transaction: its effect and its
    completion commit together (and the run spares a transaction of its own).

    ``retry`` names rows of a grouped run's batch (by position) that failed on their own
    (a coupon WeChat Pay did not answer among the hundred it did): each is retried, or
    dead-lettered, by its own count in the same transaction, and the rest are done."""
    run = _current.get()
    if run is None:
        raise RuntimeError("not running as a task")
    retry = retry or {}
    if not set(retry) <= set(range(len(run.rows))):
        raise ValueError(f"no rows at {sorted(set(retry) - set(range(len(run.rows))))}")
    done = [row.id for n, row in enumerate(run.rows) if n not in retry]
    if done:
        session.execute(_done(done, run.token))
    settled: list[tuple[Taken, Retry, bool]] = []
    for n, failure in sorted(retry.items()):
        row = run.rows[n]
        dead, values = _outcome(row.attempts, row.max_attempts, failure.error, failure.after_s)
        won = session.execute(
            update(Task)
            .where(Task.id == row.id, Task.token == run.token)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if rowcount(won) == 1:  # else another run holds the row now: it tells
            settled.append((row, failure, dead))

    def completed() -> None:
        run.completed.set()
        for row, failure, dead in settled:
            _told(row.id, run.name, row.args, row.attempts, failure.error, dead)

    on_commit(session, completed)


def _done(task_ids: Sequence[int], token: str) -> Any:
    return (
        update(Task)
        .where(Task.id.in_(task_ids), Task.token == token)
        .values(
            status=TaskStatus.DONE,
            finished_at=now(),
            lease_until=None,
            worker_id=None,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )


def backoff_s(attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1-based): the base doubling up to an hour,
    ±10 % so that a receiver's outage does not end in a thundering herd."""
    base = min(get_settings().task_backoff_base_s * 2 ** (attempt - 1), BACKOFF_CAP_S)
    return float(base * random.uniform(0.9, 1.1))


# -- deferring --------------------------------------------------------------------------------

# This process's worker row, while it runs one (:mod:`gonghui.tasks.runtime`): the sends
# and runs it makes are tied to its heartbeat.
_worker_id: int | None = None

# Set by the runtime: whether this process sends what it defers as it commits (it runs a
# worker). Otherwise a relay sends it.
_sends_on_commit: Callable[[], bool] = lambda: False  # noqa: E731


def sends_on_commit(predicate: Callable[[], bool]) -> None:
    global _sends_on_commit
    _sends_on_commit = predicate


def defer(
    session: Session,
    name: str,
    *,
    delay_s: float = 0.0,
    max_attempts: int | None = None,
    **args: Any,
) -> int:
    """Queue task ``name`` with keyword ``args`` in ``session``'s transaction: it runs
    after the commit (``delay_s`` later), never if the transaction rolls back. Returns
    the task's id."""
    (task_id,) = defer_many(session, name, [args], delay_s=delay_s, max_attempts=max_attempts)
    return task_id


def defer_many(
    session: Session,
    name: str,
    args: Sequence[dict[str, Any]],
    *,
    request_ids: Sequence[str | None] | None = None,
    delay_s: float = 0.0,
    max_attempts: int | None = None,
) -> list[int]:
    """Queue one task ``name`` per keyword arguments in ``args`` (as :func:`defer`), with
    one INSERT; ``request_ids``, in the same order, are the requests each task is deferred
    for (a batch form's calls; by default the current request). Returns the tasks' ids,
    ascending."""
    kind = _kinds.get(name)
    if kind is None:
        raise ValueError(f"no task {name!r} is registered")
    if not args:
        return []
    for one in args:
        json.dumps(one)  # fails here, in the caller, rather than in a worker
    if request_ids is None:
        request_ids = [request_id_var.get()] * len(args)
    at = now()
    # A grouped kind waits for the relay, whose pass gathers the rows of every transaction
    # since the last one into groups (one notification per prize won, told a hundred at a
    # time); sent at each commit, a lone row would be a group of one.
    send = delay_s <= 0 and not kind.grouped and _sends_on_commit()
    common = {
        "name": name,
        "status": TaskStatus.QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts or kind.max_attempts,
        "run_at": at + timedelta(seconds=delay_s),
        "lease_until": at + timedelta(seconds=get_settings().task_send_lease_s) if send else None,
        "worker_id": _worker_id if send else None,
        "created_at": at,
    }
    # One send claims all the rows, as a relay's pass does.
    token = uuid.uuid4().hex if send else None
    rows = [
        {**common, "args": one, "request_id": request_id, "token": token}
        for one, request_id in zip(args, request_ids, strict=True)
    ]
    written = session.connection().execute(_INSERT_TASKS, rows).all()
    if token is not None:
        messages = _messages(token, [(task_id, one) for task_id, one in written], name)
        on_commit(session, lambda: _send_all(messages))
    return sorted(task_id for task_id, _ in written)


_INSERT_TASKS = insert(Task).returning(Task.id, Task.args)


class Sending(NamedTuple):
    """A message to send: the row it names (a group's first), its token and slot, and
    every row it stands for (given back if the broker refuses it)."""

    task_id: int
    name: str
    token: str
    slot: str | None
    task_ids: tuple[int, ...]


def _messages(token: str, claimed: list[tuple[int, dict[str, Any]]], name: str) -> list[Sending]:
    """The messages for rows of kind ``name`` claimed with ``token``: one per row, or one
    for them all when the kind is grouped."""
    kind = _kinds.get(name)
    if kind is not None and kind.grouped:
        ids = tuple(sorted(task_id for task_id, _ in claimed))
        return [Sending(ids[0], name, token, None, ids)]
    return [
        Sending(task_id, name, token, _slot_of(name, args), (task_id,)) for task_id, args in claimed
    ]


def _send_all(messages: list[Sending]) -> None:
    for message in messages:
        _send(message)


def _send(message: Sending) -> None:
    """Send one message; if the broker refuses, give its rows back to the relays (at
    once, or when their lease passes should that fail too)."""
    from gonghui.tasks import broker

    try:
        broker.send(message.name, message.task_id, message.token, message.slot)
    except Exception:
        log.warning("could not send task %s; a relay will", message.task_id, exc_info=True)
        _give_back(message.token, list(message.task_ids))


def _give_back(token: str, ids: list[int]) -> None:
    try:
        with unit_of_work() as session:
            session.execute(
                update(Task)
                .where(Task.id.in_(ids), Task.token == token)
                .values(lease_until=None, worker_id=None)
                .execution_options(synchronize_session=False)
            )
    except Exception:
        log.warning("could not give back tasks %s", ids, exc_info=True)


# -- the relay ------------------------------------------------------------------------------


def alive_since(at: datetime) -> datetime:
    """A worker that beat since then is alive."""
    return at - timedelta(seconds=get_settings().task_heartbeat_timeout_s)


def due_now(at: datetime) -> Any:
    """Rows to send now: queued, their time come, and no send of them alive: none made,
    its lease passed, or the worker that sent it (whose in-process broker may hold the
    message) or runs it no longer beating."""
    running_alive = exists().where(
        Worker.id == Task.worker_id, Worker.heartbeat_at >= alive_since(at)
    )
    return and_(
        Task.status == TaskStatus.QUEUED,
        Task.run_at <= at,
        or_(
            Task.lease_until.is_(None),
            Task.lease_until < at,
            and_(Task.worker_id.is_not(None), ~running_alive),
        ),
    )


def claim_due(limit: int = GROUP_MAX) -> list[Sending]:
    """Claim up to ``limit`` due rows for sending: the messages to send for them.

    Relays look twice a second and mostly find nothing (a worker's process sends what it
    defers as it commits), so a look first reads whether anything is due: the write
    transaction, which on SQLite takes the lock the hot writer needs, only when it is.
    The rows of a kind that holds (:func:`grouped`'s ``hold_while``) are not due while it
    does."""
    at = now()
    due = and_(due_now(at), unheld(at))
    with unit_of_work(read_only=True) as session:
        if session.scalar(select(Task.id).where(due).limit(1)) is None:
            return []
    token = uuid.uuid4().hex
    lease = at + timedelta(seconds=get_settings().task_send_lease_s)
    with unit_of_work() as session:
        # Two statements rather than UPDATE ... WHERE id IN (SELECT ... LIMIT): PostgreSQL
        # may run such a subquery more than once and take more rows than the limit.
        ids = session.scalars(
            select(Task.id)
            .where(due)
            .order_by(Task.run_at, Task.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # rows another relay claims are left to it
        ).all()
        if not ids:
            return []
        rows = session.execute(
            update(Task)
            .where(Task.id.in_(ids), due_now(at))
            .values(token=token, lease_until=lease, worker_id=_worker_id)
            .returning(Task.id, Task.name, Task.args)
            .execution_options(synchronize_session=False)
        ).all()
    by_name: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for task_id, name, args in sorted(rows):
        by_name.setdefault(name, []).append((task_id, args))
    messages = [m for name, claimed in by_name.items() for m in _messages(token, claimed, name)]
    return sorted(messages, key=lambda m: m.task_id)


def unheld(at: datetime) -> ColumnElement[bool]:
    """Rows no hold keeps queued now: of a kind not holding at ``at`` (see :func:`grouped`'s
    ``hold_while``), or ``hold_s`` past their time. Asked in this process, so on this host."""
    return and_(
        true(),
        *(
            or_(Task.name != kind.name, Task.run_at <= at - timedelta(seconds=kind.hold_s))
            for kind in _kinds.values()
            if kind.hold_while is not None and kind.hold_while()
        ),
    )


def _slot_of(name: str, args: dict[str, Any]) -> str | None:
    kind = _kinds.get(name)
    return kind.slot_of(args) if kind is not None else None


RELAY_BATCH = GROUP_MAX


def relay_due(limit: int = RELAY_BATCH) -> int:
    """Send up to ``limit`` due rows to the broker; returns how many rows were sent. A
    send the broker refuses (Redis unreachable) ends the pass: the rest of the batch is
    given back for a later one."""
    from gonghui.tasks import broker

    messages = claim_due(limit)
    for n, message in enumerate(messages):
        try:
            broker.send(message.name, message.task_id, message.token, message.slot)
        except Exception:
            rest = [i for m in messages[n:] for i in m.task_ids]
            log.warning(
                "the broker refused a task; %d given back for a later pass",
                len(rest),
                exc_info=True,
            )
            _give_back(message.token, rest)
            return sum(len(m.task_ids) for m in messages[:n])
    return sum(len(m.task_ids) for m in messages)


def run_due(*, limit: int = 1000) -> int:
    """Claim the due rows and run them here, one after the other, rather than through the
    broker (tests; the CLI); returns how many ran. Periodic work is left to its clock."""
    ran = 0
    while ran < limit:
        claimed = _claim_one()
        if claimed is None:
            return ran
        name, task_id, token, count = claimed
        execute(name, task_id, token)
        ran += count
    return ran


def _claim_one() -> tuple[str, int, str, int] | None:
    """Claim the next due row (with the due rows of its kind, up to a group, if grouped):
    its name, id, token and how many rows were claimed."""
    at = now()
    token = uuid.uuid4().hex
    with unit_of_work() as session:
        row = session.execute(
            select(Task.id, Task.name)
            .where(due_now(at), Task.key.is_(None))
            .order_by(Task.run_at, Task.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        ids = [row.id]
        kind = _kinds.get(row.name)
        if kind is not None and kind.grouped:
            ids = list(
                session.scalars(
                    select(Task.id)
                    .where(due_now(at), Task.name == row.name)
                    .order_by(Task.id)
                    .limit(GROUP_MAX)
                )
            )
        won = rowcount(
            session.execute(
                update(Task)
                .where(Task.id.in_(ids), due_now(at))
                .values(token=token, lease_until=at + timedelta(seconds=GRACE_S), worker_id=None)
                .execution_options(synchronize_session=False)
            )
        )
    return (row.name, min(ids), token, won) if won else None


# -- running ---------------------------------------------------------------------------------


def register_worker(*, host: str, pid: int, threads: int) -> int:
    global _worker_id
    with unit_of_work() as session:
        worker = Worker(host=host[:255], pid=pid, threads=threads)
        session.add(worker)
        session.flush()
        _worker_id = worker.id
    return _worker_id


def beat() -> None:
    """This worker lives: the tasks it runs are its own a while longer."""
    if _worker_id is None:
        return
    with unit_of_work() as session:
        session.execute(
            update(Worker)
            .where(Worker.id == _worker_id)
            .values(heartbeat_at=now())
            .execution_options(synchronize_session=False)
        )


def unregister_worker() -> None:
    global _worker_id
    worker_id, _worker_id = _worker_id, None
    if worker_id is None:
        return
    with unit_of_work() as session:
        session.execute(delete(Worker).where(Worker.id == worker_id))


class _Slots:
    """The tasks of each slot this worker runs now, and the messages parked until one of
    them ends (in arrival order)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: Counter[str] = Counter()
        self._parked: dict[str, deque[Sending]] = {}

    def take_or_park(self, message: Sending, limit: int) -> bool:
        """Take a place in the message's slot, or park the message (False)."""
        slot = message.slot or ""
        with self._lock:
            if self._busy[slot] >= limit:
                self._parked.setdefault(slot, deque()).append(message)
                return False
            self._busy[slot] += 1
            return True

    def give(self, slot: str) -> Sending | None:
        """Leave the slot; returns a parked message to send again now, if any."""
        with self._lock:
            self._busy[slot] -= 1
            if self._busy[slot] <= 0:
                del self._busy[slot]
            parked = self._parked.get(slot)
            if not parked:
                return None
            message = parked.popleft()
            if not parked:
                del self._parked[slot]
            return message


_slots = _Slots()


def execute(name: str, task_id: int, token: str, slot: str | None = None) -> str:
    """Run one sent task (a broker's message): ``"stale"`` when the row no longer holds
    ``token``, ``"parked"`` when its slot is full (it is sent again as soon as one of the
    slot's runs here ends), else the outcome written (``"done"``, ``"retry"``,
    ``"dead"``)."""
    kind = _kinds.get(name)
    if kind is not None and kind.grouped:
        return _execute_group(kind, token)
    if slot is None or kind is None or kind.slot_limit is None:
        return _execute(kind, name, task_id, token)
    if not _slots.take_or_park(Sending(task_id, name, token, slot, (task_id,)), kind.slot_limit()):
        _hold(task_id, token)
        return "parked"
    try:
        return _execute(kind, name, task_id, token)
    finally:
        parked = _slots.give(slot)
        if parked is not None:
            _send(parked)


def _hold(task_id: int, token: str) -> None:
    """A parked message lives in this worker only: tie its row to this worker's heartbeat,
    so that it is sent again soon if this worker dies. With the in-process broker the
    row is tied to it already (this process sent the message)."""
    from gonghui.tasks import broker

    if _worker_id is None or not broker.shared():
        return
    with unit_of_work() as session:
        session.execute(
            update(Task)
            .where(Task.id == task_id, Task.token == token)
            .values(worker_id=_worker_id)
            .execution_options(synchronize_session=False)
        )


def _execute(kind: Kind | None, name: str, task_id: int, token: str) -> str:
    """Run the one row a message names."""
    return _run_claimed(kind, name, token, Task.id == task_id)


def _execute_group(kind: Kind, token: str) -> str:
    """Run the rows of a grouped kind that a message's token claimed, with one call."""
    return _run_claimed(kind, kind.name, token, Task.name == kind.name)


def _run_claimed(kind: Kind | None, name: str, token: str, rows_of: ColumnElement[bool]) -> str:
    """Take the queued rows ``rows_of`` that ``token`` claimed (an attempt each, leased for
    the kind's time limit) and run them: a grouped kind's with one call of their arguments,
    another's (one row) with its own. ``"stale"`` when no row holds the token any more,
    else the outcome written: ``"done"``, ``"retry"``, or ``"dead"`` when every row is."""
    limit_s = kind.time_limit_s if kind else GRACE_S
    at = now()
    with unit_of_work() as session:
        rows = session.execute(
            update(Task)
            .where(rows_of, Task.token == token, Task.status == TaskStatus.QUEUED)
            .values(
                attempts=Task.attempts + 1,
                lease_until=at + timedelta(seconds=limit_s + GRACE_S),
                worker_id=_worker_id,
            )
            .returning(Task.id, Task.args, Task.attempts, Task.max_attempts, Task.request_id)
            .execution_options(synchronize_session=False)
        ).all()
    if not rows:
        return "stale"
    live = []
    for row in sorted(rows, key=lambda r: r.id):
        if row.attempts > row.max_attempts:
            # Its last run never wrote an outcome: the process running it died.
            _settle(row.id, token, name, row.args, row.attempts, row.max_attempts,
                    "the worker stopped during the run")  # fmt: skip
        else:
            live.append(row)
    if not live:
        return "dead"
    first = live[0]
    with request_scope(first.request_id):
        if kind is None:
            return _settle(first.id, token, name, first.args, first.attempts,
                           first.max_attempts, f"no task {name!r} here")  # fmt: skip
        run = Run(
            first.id,
            name,
            max(r.attempts for r in live),
            min(r.max_attempts for r in live),
            token,
            tuple(Taken(r.id, r.args, r.attempts, r.max_attempts) for r in live),
        )
        reset = _current.set(run)
        started = time.monotonic()
        try:
            if kind.grouped:
                kind.run([r.args for r in live])
            else:
                kind.run(**first.args)
        except Exception as exc:
            if isinstance(exc, Retry):
                error, after = exc.error, exc.after_s
            else:
                log.exception("task %s.. (%s, %d) failed", first.id, name, len(live))
                error, after = f"{type(exc).__name__}: {exc}", None
            outcomes = {
                _settle(r.id, token, name, r.args, r.attempts, r.max_attempts, error, after)
                for r in live
            }
            return "dead" if outcomes == {"dead"} else "retry"
        finally:
            _current.reset(reset)
        ms = (time.monotonic() - started) * 1000
        if not run.completed.is_set():
            with unit_of_work() as session:
                session.execute(_done(run.task_ids, token))
        log.debug(
            "task done",
            extra={
                "fields": {"task": first.id, "name": name, "rows": len(live),
                           "attempt": run.attempt, "ms": round(ms, 2)}
            },
        )  # fmt: skip
        return "done"


def _outcome(
    attempt: int, max_attempts: int, error: str, after_s: float | None
) -> tuple[bool, dict[str, Any]]:
    """A failed attempt's row: dead-lettered past its limit, else due again after
    ``after_s`` (default: the backoff). Whether it is dead, and the row's new values."""
    values: dict[str, Any] = {
        "lease_until": None,
        "worker_id": None,
        "last_error": error[:MAX_ERROR_CHARS],
    }
    if attempt >= max_attempts:
        return True, values | {"status": TaskStatus.DEAD, "finished_at": now()}
    delay = after_s if after_s is not None else backoff_s(attempt)
    return False, values | {"run_at": now() + timedelta(seconds=delay)}


def _told(
    task_id: int, name: str, args: dict[str, Any], attempt: int, error: str, dead: bool
) -> str:
    """Log a failed attempt once its row is written; a row this run dead-lettered
    (``dead``) runs its kind's dead-letter hook."""
    fields = {"task": task_id, "name": name, "attempt": attempt, "error": error[:MAX_ERROR_CHARS]}
    if not dead:
        log.warning("task failed, retried later", extra={"fields": fields})
        return "retry"
    log.error("task dead-lettered", extra={"fields": fields})
    kind = _kinds.get(name)
    if kind is not None and kind.on_dead is not None:
        try:
            kind.on_dead(args, error[:MAX_ERROR_CHARS])
        except Exception:
            log.exception("the dead-letter hook of task %s failed", task_id)
    return "dead"


def _settle(
    task_id: int,
    token: str,
    name: str,
    args: dict[str, Any],
    attempt: int,
    max_attempts: int,
    error: str,
    after_s: float | None = None,
) -> str:
    dead, values = _outcome(attempt, max_attempts, error, after_s)
    with unit_of_work() as session:
        won = rowcount(
            session.execute(
                update(Task)
                .where(Task.id == task_id, Task.token == token)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        )
    if dead and not won:
        log.error("task dead-lettered", extra={"fields": {"task": task_id, "name": name}})
        return "dead"
    return _told(task_id, name, args, attempt, error, dead)


# -- periodic work --------------------------------------------------------------------------


def arm_periodic(at: datetime | None = None) -> int:
    """Queue each periodic kind whose window has come and whose last run is over (one row
    per kind, re-armed); returns how many were queued.

    Every worker's clock calls this at least once a second, so it first reads the kinds'
    rows and writes only for those that look due: a second in which nothing is due costs
    one read instead of a write transaction per kind, each of which took SQLite's one
    write lock from the hot writer (in one process 15 kinds took 16.6 ms a call). The
    writes keep their own conditions, so clocks that race still arm a window once."""
    at = at or now()
    windows: dict[str, tuple[Kind, datetime]] = {}
    for kind in list(_kinds.values()):
        if kind.every_s is None:
            continue
        every = max(kind.every_s(), 0.001)
        window = datetime.fromtimestamp(math.floor(at.timestamp() / every) * every, tz=at.tzinfo)
        windows[f"periodic:{kind.name}"] = (kind, window)
    if not windows:
        return 0
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(Task.key, Task.status, Task.run_at).where(Task.key.in_(list(windows)))
        )
        armed_rows = {key: (status, run_at) for key, status, run_at in rows}
    due = [
        (key, kind, window)
        for key, (kind, window) in windows.items()
        if key not in armed_rows
        or (armed_rows[key][0] != TaskStatus.QUEUED and armed_rows[key][1] < window)
    ]
    if not due:
        return 0
    armed = 0
    with unit_of_work() as session:
        for key, kind, window in due:
            inserted = session.scalar(
                upsert_insert(session.get_bind().dialect.name)(Task)
                .values(
                    name=kind.name,
                    args={},
                    status=TaskStatus.QUEUED,
                    attempts=0,
                    max_attempts=1,
                    run_at=window,
                    key=key,
                    created_at=at,
                )
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(Task.id)
            )
            if inserted is not None:
                armed += 1
                continue
            armed += rowcount(
                session.execute(
                    update(Task)
                    .where(Task.key == key, Task.status != TaskStatus.QUEUED, Task.run_at < window)
                    .values(
                        status=TaskStatus.QUEUED,
                        attempts=0,
                        run_at=window,
                        token=None,
                        lease_until=None,
                        finished_at=None,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
    return armed


# -- what operators do ------------------------------------------------------------------------


def ping() -> None:
    """Raise unless the queue's table answers."""
    with unit_of_work(read_only=True) as session:
        session.execute(select(Task.id).limit(1))


def requeue(session: Session, task_id: int) -> bool:
    """Run a dead-lettered task again, with its attempts counted afresh."""
    return (
        rowcount(
            session.execute(
                update(Task)
                .where(Task.id == task_id, Task.status == TaskStatus.DEAD)
                .values(
                    status=TaskStatus.QUEUED,
                    attempts=0,
                    run_at=now(),
                    token=None,
                    lease_until=None,
                    finished_at=None,
                )
                .execution_options(synchronize_session=False)
            )
        )
        == 1
    )


def purge_finished(session: Session, *, done_days: float, dead_days: float) -> int:
    """Delete tasks (not periodic ones) done more than ``done_days`` ago, or dead more than
    ``dead_days`` ago, and workers silent for a day (killed ones leave their row)."""
    at = now()
    gone = rowcount(
        session.execute(
            delete(Worker)
            .where(Worker.heartbeat_at < at - timedelta(days=1))
            .execution_options(synchronize_session=False)
        )
    )
    return gone + rowcount(
        session.execute(
            delete(Task)
            .where(
                Task.key.is_(None),
                or_(
                    and_(
                        Task.status == TaskStatus.DONE,
                        Task.finished_at < at - timedelta(days=done_days),
                    ),
                    and_(
                        Task.status == TaskStatus.DEAD,
                        Task.finished_at < at - timedelta(days=dead_days),
                    ),
                ),
            )
            .execution_options(synchronize_session=False)
        )
    )

"""The task queue: work deferred with its transaction runs once it commits and never if it
rolls back; failures are retried with backoff and dead-lettered; a message sent twice
runs once; periodic work runs once per window; a worker runs what is deferred through
the broker (in-process, or Redis), and the tasks of a worker that stopped beating are
sent again."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from gonghui import clock, tasks
from gonghui.db import unit_of_work
from gonghui.settings import get_settings
from gonghui.tasks import queue
from gonghui.tasks.models import Task, Worker
from tests.conftest import redis_configured
from tests.faults import eventually

pytestmark = pytest.mark.database_fallback

ran: list[tuple[str, int]] = []
dead: list[tuple[dict[str, Any], str]] = []
_ran_lock = threading.Lock()


def _on_dead(args: dict[str, Any], error: str) -> None:
    dead.append((args, error))


@tasks.task("tests.note", max_attempts=3, on_dead=_on_dead)
def note(mark: str, fail: bool = False) -> None:
    run = tasks.current()
    assert run is not None
    with _ran_lock:
        ran.append((mark, run.attempt))
    if fail:
        raise RuntimeError(f"{mark} failed")


# Tasks of one slot: how many ran at once, at most, per slot.
in_slot: dict[str, int] = {}
most_in_slot: dict[str, int] = {}
release_slots = threading.Event()


@tasks.task("tests.slotted", slot=lambda args: args["slot"], slot_limit=lambda: 1)
def slotted(slot: str, mark: str, hold: bool = False) -> None:
    with _ran_lock:
        in_slot[slot] = in_slot.get(slot, 0) + 1
        most_in_slot[slot] = max(most_in_slot.get(slot, 0), in_slot[slot])
        ran.append((mark, 1))
    if hold:
        release_slots.wait(30)
    with _ran_lock:
        in_slot[slot] -= 1


@tasks.task("tests.completing", max_attempts=2)
def completing(fail_after: bool) -> None:
    """Records itself done in its own transaction, which then fails (or not)."""
    with _ran_lock:
        ran.append(("completing", 1))
    with unit_of_work() as session:
        tasks.complete(session)
        if fail_after:
            raise RuntimeError("the effect failed")


# Each run of the grouped kind: the marks it was given.
groups: list[list[str]] = []


@tasks.grouped("tests.grouped", max_attempts=2, on_dead=_on_dead)
def grouped_notes(batch: list[dict[str, Any]]) -> None:
    with _ran_lock:
        groups.append([one["mark"] for one in batch])
    if any(one.get("fail") for one in batch):
        raise RuntimeError("the group failed")


@tasks.grouped("tests.grouped_partly", max_attempts=2, on_dead=_on_dead)
def grouped_partly(batch: list[dict[str, Any]]) -> None:
    """Records the group's marks; the rows marked ``fail`` are retried on their own."""
    with _ran_lock:
        groups.append([one["mark"] for one in batch])
    with unit_of_work() as session:
        retry = {n: tasks.Retry("no answer") for n, one in enumerate(batch) if one.get("fail")}
        tasks.complete(session, retry=retry)


# While set, relays hold the rows of the kind below (as sends hold while members write).
holding = threading.Event()


@tasks.grouped("tests.yielding", hold_while=holding.is_set, hold_s=30.0)
def yielding(batch: list[dict[str, Any]]) -> None:
    with _ran_lock:
        groups.append([one["mark"] for one in batch])


windows: list[float] = []


@tasks.periodic("tests.tick", every_s=lambda: 60.0)
def tick() -> None:
    windows.append(clock.now().timestamp())


@pytest.fixture(autouse=True)
def clean() -> None:
    ran.clear()
    dead.clear()
    windows.clear()
    groups.clear()
    in_slot.clear()
    most_in_slot.clear()
    release_slots.clear()
    holding.clear()


def rows() -> list[Task]:
    with unit_of_work(read_only=True) as session:
        return list(session.scalars(select(Task).order_by(Task.id)))


def test_work_deferred_in_a_rolled_back_transaction_never_runs() -> None:
    def change_that_fails() -> None:
        with unit_of_work() as session:
            tasks.defer(session, "tests.note", mark="lost")
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    with unit_of_work() as session:
        tasks.defer(session, "tests.note", mark="kept")
    assert tasks.run_due() == 1
    assert ran == [("kept", 1)]
    [row] = rows()
    assert (row.status, row.attempts, row.last_error) == ("done", 1, None)


def test_arguments_that_are_not_json_are_refused_when_deferred() -> None:
    with unit_of_work() as session:
        with pytest.raises(TypeError):
            tasks.defer(session, "tests.note", mark=object())
        with pytest.raises(ValueError, match="no task"):
            tasks.defer(session, "tests.no-such-task")
    assert rows() == []


def test_a_failing_task_is_retried_with_backoff_then_dead_lettered_and_can_be_requeued(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_settings(), "task_backoff_base_s", 10.0)
    with unit_of_work() as session:
        task_id = tasks.defer(session, "tests.note", mark="flaky", fail=True)
    failing_from = clock.now()
    assert tasks.run_due() == 1
    assert tasks.run_due() == 0  # waiting about 10 s
    failed_by = clock.now()
    [row] = rows()
    assert (row.status, row.attempts, row.last_error) == ("queued", 1, "RuntimeError: flaky failed")
    # 10 s ± 10 % after the failure, which came between those two readings of the clock.
    assert failing_from + timedelta(seconds=9) <= row.run_at <= failed_by + timedelta(seconds=11)
    clock.advance(timedelta(seconds=11))
    assert tasks.run_due() == 1
    assert tasks.run_due() == 0  # the second retry waits about 20 s
    clock.advance(timedelta(seconds=23))
    assert tasks.run_due() == 1
    [row] = rows()
    assert (row.status, row.attempts) == ("dead", 3)
    assert dead == [({"mark": "flaky", "fail": True}, "RuntimeError: flaky failed")]
    clock.advance(timedelta(hours=2))
    assert tasks.run_due() == 0  # dead stays dead

    with unit_of_work() as session:
        assert tasks.requeue(session, task_id)
        assert not tasks.requeue(session, task_id)  # only a dead task
    assert tasks.run_due() == 1
    assert [a for m, a in ran] == [1, 2, 3, 1]


def test_a_slot_whose_tasks_hang_holds_only_its_own_share_of_a_worker() -> None:
    """Slot "slow" (limit 1) has three tasks, the first of which hangs: the other two wait
    for it, untouched, while every task of slot "fast" runs on the worker's other threads."""
    tasks.runtime.start(threads=3)
    try:
        with unit_of_work() as session:
            tasks.defer(session, "tests.slotted", slot="slow", mark="s0", hold=True)
        eventually("the slow task started", lambda: ("s0", 1) in ran, within_s=30)
        with unit_of_work() as session:
            for i in (1, 2):
                tasks.defer(session, "tests.slotted", slot="slow", mark=f"s{i}")
            for i in range(6):
                tasks.defer(session, "tests.slotted", slot="fast", mark=f"f{i}")
        eventually(
            "the six fast tasks ran",
            lambda: len([m for m, _ in ran if m.startswith("f")]) == 6,
            within_s=30,
        )
        assert sorted(m for m, _ in ran if m.startswith("s")) == ["s0"]  # still waiting
        release_slots.set()
        eventually("all nine tasks ran", lambda: len(ran) == 9, within_s=30)
    finally:
        release_slots.set()
        tasks.runtime.stop()
    assert most_in_slot == {"slow": 1, "fast": 1}
    with unit_of_work(read_only=True) as session:
        assert set(session.scalars(select(Task.attempts).where(Task.key.is_(None)))) == {1}


def test_a_task_completed_in_its_own_transaction_is_done_only_if_that_commits() -> None:
    with unit_of_work() as session:
        tasks.defer(session, "tests.completing", fail_after=False)
        tasks.defer(session, "tests.completing", fail_after=True)
    assert tasks.run_due() == 2
    done, failed = rows()
    assert (done.status, done.attempts) == ("done", 1)
    assert (failed.status, failed.attempts) == ("queued", 1)  # rolled back: retried
    assert failed.last_error == "RuntimeError: the effect failed"


def test_a_message_runs_only_while_its_row_holds_its_token() -> None:
    with unit_of_work() as session:
        tasks.defer(session, "tests.note", mark="once")
    [(task_id, name, old, *_)] = queue.claim_due()
    # Its lease passes (a lost message) and a relay sends it again with a new token.
    clock.advance(timedelta(seconds=get_settings().task_send_lease_s + 1))
    [(_, _, new, *_)] = queue.claim_due()
    assert new != old
    assert queue.execute(name, task_id, old) == "stale"
    assert queue.execute(name, task_id, new) == "done"
    assert queue.execute(name, task_id, new) == "stale"  # delivered twice by the broker
    assert ran == [("once", 1)]


def test_the_tasks_of_a_worker_that_stopped_beating_are_sent_again() -> None:
    with unit_of_work() as session:
        tasks.defer(session, "tests.note", mark="orphan")
        worker = Worker(host="gone", pid=1, threads=1)
        session.add(worker)
        session.flush()
        worker_id = worker.id
    [(task_id, *_)] = queue.claim_due()
    with unit_of_work() as session:  # the message was taken by that worker, which runs it
        session.execute(update(Task).where(Task.id == task_id).values(worker_id=worker_id))
    assert queue.claim_due() == []  # its worker beats: the lease holds
    clock.advance(timedelta(seconds=get_settings().task_heartbeat_timeout_s + 1))
    [(again, name, token, *_)] = queue.claim_due()
    assert again == task_id
    assert queue.execute(name, task_id, token) == "done"


def test_a_run_cut_short_by_a_crash_counts_and_the_last_one_dead_letters() -> None:
    with unit_of_work() as session:
        tasks.defer(session, "tests.note", mark="crashy", max_attempts=1)
    [(task_id, name, token, *_)] = queue.claim_due()
    with unit_of_work() as session:  # it started (attempt 1), then its process died
        session.execute(update(Task).where(Task.id == task_id).values(attempts=1, lease_until=None))
    [(_, _, token, *_)] = queue.claim_due()
    assert queue.execute(name, task_id, token) == "dead"
    assert ran == []
    assert dead == [({"mark": "crashy"}, "the worker stopped during the run")]


def test_periodic_work_is_armed_once_per_window_however_many_workers_arm_it() -> None:
    at = clock.now()
    armed = [queue.arm_periodic(at) for _ in range(3)]  # three workers' clocks
    assert armed[0] >= 1
    assert armed[1:] == [0, 0]
    [row] = [r for r in rows() if r.name == "tests.tick"]
    [(task_id, name, token, *_)] = [c for c in queue.claim_due() if c[1] == "tests.tick"]
    assert queue.execute(name, task_id, token) == "done"
    assert queue.arm_periodic(at) == 0  # done for this window
    queue.arm_periodic(at + timedelta(seconds=60))
    [row] = [r for r in rows() if r.name == "tests.tick"]
    assert row.status == "queued"
    assert len(windows) == 1


def test_a_clock_or_relay_that_finds_nothing_due_only_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every worker's clock looks at least once a second and its relay twice: a look that
    finds every kind armed for its window, or nothing to send, must not open a write
    transaction (on SQLite, it would take the one lock the hot writer needs)."""
    at = clock.now()
    queue.arm_periodic(at)
    while queue.claim_due():  # every armed row taken for sending: nothing left due
        pass
    units: list[bool] = []

    def unit(*, read_only: bool = False) -> Any:
        units.append(read_only)
        return unit_of_work(read_only=read_only)

    monkeypatch.setattr(queue, "unit_of_work", unit)
    assert queue.arm_periodic(at) == 0
    assert queue.relay_due() == 0
    assert units == [True, True]
    # Once something is due, the look goes on to claim it in a write transaction.
    with unit_of_work() as session:
        tasks.defer(session, "tests.note", mark="due")
    assert queue.relay_due() == 1
    assert units[2:] == [True, False]


@pytest.mark.parametrize("broker_kind", ["in-process", "redis"])
def test_a_worker_runs_what_is_deferred_through_its_broker(
    broker_kind: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if broker_kind == "redis" else ""
    with redis_configured(url):
        tasks.runtime.start(threads=2)
        try:
            with unit_of_work() as session:
                for i in range(20):
                    tasks.defer(session, "tests.note", mark=f"m{i}")
            with unit_of_work() as session:  # a delayed one, sent by the relay when due
                tasks.defer(session, "tests.note", delay_s=0.3, mark="delayed")
            eventually("all 21 tasks ran", lambda: len(ran) == 21, within_s=30)
        finally:
            tasks.runtime.stop()
    assert sorted(m for m, _ in ran) == sorted([f"m{i}" for i in range(20)] + ["delayed"])
    assert {r.status for r in rows() if r.name == "tests.note"} == {"done"}
    with unit_of_work(read_only=True) as session:
        assert session.scalars(select(Worker)).all() == []  # it said goodbye


def test_tasks_deferred_in_bulk_run_once_each_under_their_own_requests() -> None:
    with unit_of_work() as session:
        ids = tasks.defer_many(
            session,
            "tests.note",
            [{"mark": f"b{i}"} for i in range(5)],
            request_ids=[f"request-{i}" for i in range(5)],
        )

    def change_that_fails() -> None:
        with unit_of_work() as session:
            tasks.defer_many(session, "tests.note", [{"mark": "lost"}, {"mark": "lost too"}])
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError):
        change_that_fails()
    written = rows()
    assert ids == [row.id for row in written]
    assert [(row.args["mark"], row.request_id) for row in written] == [
        (f"b{i}", f"request-{i}") for i in range(5)
    ]
    tasks.runtime.start(threads=2)
    try:
        eventually("all five tasks ran", lambda: len(ran) == 5, within_s=30)
    finally:
        tasks.runtime.stop()
    assert sorted(ran) == [(f"b{i}", 1) for i in range(5)]
    assert {row.status for row in rows() if row.name == "tests.note"} == {"done"}


def test_a_relay_pass_the_broker_refuses_gives_the_rest_back_and_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gonghui.tasks import broker

    with unit_of_work() as session:
        for i in range(5):
            tasks.defer(session, "tests.note", mark=f"r{i}")
    sent: list[int] = []

    def refuses_after_two(name: str, task_id: int, token: str, slot: str | None) -> None:
        if len(sent) == 2:
            raise ConnectionError("Redis is unreachable")
        sent.append(task_id)

    monkeypatch.setattr(broker, "send", refuses_after_two)
    assert queue.relay_due() == 2
    # The three not sent are due again at once; the two sent wait for their lease.
    assert len(queue.claim_due()) == 3


def test_a_grouped_kind_runs_the_rows_of_one_send_in_one_call() -> None:
    for i in range(5):  # five transactions, as five members' wins
        with unit_of_work() as session:
            tasks.defer(session, "tests.grouped", mark=f"g{i}")
    assert tasks.run_due() == 5
    assert groups == [[f"g{i}" for i in range(5)]]
    assert {(r.status, r.attempts) for r in rows()} == {("done", 1)}


def test_a_relay_sends_one_message_for_a_group_and_a_stale_one_runs_nothing() -> None:
    with unit_of_work() as session:
        tasks.defer_many(session, "tests.grouped", [{"mark": f"r{i}"} for i in range(3)])
        tasks.defer(session, "tests.note", mark="single")
    messages = queue.claim_due()
    assert sorted((m.name, len(m.task_ids)) for m in messages) == [
        ("tests.grouped", 3),
        ("tests.note", 1),
    ]
    [group] = [m for m in messages if m.name == "tests.grouped"]
    assert queue.execute(group.name, group.task_id, group.token) == "done"
    assert queue.execute(group.name, group.task_id, group.token) == "stale"  # sent twice
    assert groups == [["r0", "r1", "r2"]]


def test_a_failed_group_retries_each_row_then_dead_letters_each() -> None:
    with unit_of_work() as session:
        tasks.defer_many(session, "tests.grouped", [{"mark": "a"}, {"mark": "b", "fail": True}])
    assert tasks.run_due() == 2
    assert [(r.status, r.attempts) for r in rows()] == [("queued", 1), ("queued", 1)]
    clock.advance(timedelta(minutes=5))
    assert tasks.run_due() == 2
    assert groups == [["a", "b"], ["a", "b"]]
    assert [r.status for r in rows()] == ["dead", "dead"]
    assert sorted(args["mark"] for args, _ in dead) == ["a", "b"]


def test_a_group_completes_its_answered_rows_and_retries_each_other_by_its_own_count() -> None:
    with unit_of_work() as session:
        tasks.defer_many(
            session,
            "tests.grouped_partly",
            [{"mark": "a"}, {"mark": "b", "fail": True}, {"mark": "c"}],
        )
    with unit_of_work() as session:
        tasks.defer(session, "tests.grouped_partly", mark="d", fail=True)
    assert tasks.run_due() == 4
    assert groups == [["a", "b", "c", "d"]]
    assert [(r.status, r.attempts, r.last_error) for r in rows()] == [
        ("done", 1, None),
        ("queued", 1, "no answer"),
        ("done", 1, None),
        ("queued", 1, "no answer"),
    ]
    assert tasks.run_due() == 0  # each waits its backoff
    clock.advance(timedelta(minutes=5))
    with unit_of_work() as session:
        tasks.defer(session, "tests.grouped_partly", mark="e")  # a fresh row joins them
    assert tasks.run_due() == 3
    assert groups[1] == ["b", "d", "e"]
    assert [(r.status, r.attempts) for r in rows()] == [
        ("done", 1),
        ("dead", 2),  # its second attempt, its last: dead-lettered, its hook told once
        ("done", 1),
        ("dead", 2),
        ("done", 1),
    ]
    assert sorted((args["mark"], error) for args, error in dead) == [
        ("b", "no answer"),
        ("d", "no answer"),
    ]


def test_a_group_cannot_retry_a_row_it_does_not_hold() -> None:
    with unit_of_work() as session:
        tasks.defer(session, "tests.grouped_partly", mark="a")
    messages = queue.claim_due()
    (message,) = messages

    def complete_beyond_the_batch(batch: list[dict[str, Any]]) -> None:
        with unit_of_work() as session:
            tasks.complete(session, retry={1: tasks.Retry("no answer")})

    kind = queue.kinds()["tests.grouped_partly"]
    queue._kinds["tests.grouped_partly"] = dataclasses.replace(kind, run=complete_beyond_the_batch)
    try:
        assert queue.execute(message.name, message.task_id, message.token) == "retry"
    finally:
        queue._kinds["tests.grouped_partly"] = kind
    (row,) = rows()
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.last_error is not None
    assert row.last_error.startswith("ValueError: no rows at [1]")


def test_a_grouped_kind_waits_for_the_relay_which_sends_groups_of_at_most_group_max(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gonghui.tasks import broker

    sent: list[tuple[str, int, str]] = []
    monkeypatch.setattr(
        broker, "send", lambda name, task_id, token, slot: sent.append((name, task_id, token))
    )
    monkeypatch.setattr(queue, "_sends_on_commit", lambda: True)
    with unit_of_work() as session:  # a process that runs a worker sends at commit ...
        tasks.defer(session, "tests.note", mark="single")
    assert [name for name, _, _ in sent] == ["tests.note"]
    for i in range(queue.GROUP_MAX + 1):  # ... but not a grouped kind's rows
        with unit_of_work() as session:
            tasks.defer(session, "tests.grouped", mark=f"m{i}")
    assert len(sent) == 1
    assert queue.relay_due() == queue.GROUP_MAX
    assert queue.relay_due() == 1
    assert [name for name, _, _ in sent[1:]] == ["tests.grouped", "tests.grouped"]
    for name, task_id, token in sent[1:]:
        assert queue.execute(name, task_id, token) == "done"
    assert sorted(len(g) for g in groups) == [1, queue.GROUP_MAX]
    assert {r.status for r in rows() if r.name == "tests.grouped"} == {"done"}


def test_a_kind_that_holds_stays_queued_untouched_until_it_stops_or_a_row_waited_its_bound() -> (
    None
):
    holding.set()
    with unit_of_work() as session:
        tasks.defer(session, "tests.yielding", mark="early")
    clock.advance(timedelta(seconds=20))
    with unit_of_work() as session:
        tasks.defer_many(session, "tests.yielding", [{"mark": "late"}, {"mark": "later"}])
        tasks.defer(session, "tests.note", mark="other")
    # Other kinds go; the holding kind's rows are left as they were: no token, no attempt.
    assert [(m.name, len(m.task_ids)) for m in queue.claim_due()] == [("tests.note", 1)]
    assert queue.claim_due() == []
    held = [r for r in rows() if r.name == "tests.yielding"]
    assert {(r.token, r.attempts, r.status) for r in held} == {(None, 0, "queued")}
    # A row held past its bound goes, as if nothing held it; the younger ones still wait.
    clock.advance(timedelta(seconds=15))
    [bound] = queue.claim_due()
    assert queue.execute(bound.name, bound.task_id, bound.token) == "done"
    assert groups == [["early"]]
    holding.clear()
    [rest] = queue.claim_due()
    assert queue.execute(rest.name, rest.task_id, rest.token) == "done"
    assert groups == [["early"], ["late", "later"]]

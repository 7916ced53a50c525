"""The hot writer: jobs batched into one transaction stay independent of each other, a
batch that meets the database gone fails whole and cleanly, and the writer process answers
with the job's own result or error, survives a server process that stops reading and a job
it cannot be sent, and its callers hear when it is gone."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gonghui import hotwrite
from gonghui.activities.lottery import draw
from gonghui.activities.vote import cast
from gonghui.activities.voucher_grab import claims
from gonghui.baas.records import write
from gonghui.db import UNAVAILABLE, on_commit, unit_of_work
from gonghui.errors import Conflict, ServiceUnavailable
from gonghui.hotwrite import client as hotwrite_client
from gonghui.hotwrite import load
from gonghui.hotwrite import writer as writer_module
from gonghui.hotwrite.registry import UnknownOperation
from gonghui.mall import checkout
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org, OrgLevel
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM
from tests import writer_hold
from tests.writer_hold import PATIENCE_S, queued_together

COMMITTED: list[str] = []


def create_org(session: Session, *, code: str, refuse: bool = False) -> int:
    org = orgs.create_org(
        session, actor=SYSTEM, code=code, name=code, level=OrgLevel.CITY, parent_id=None
    )
    on_commit(session, lambda: COMMITTED.append(code))
    if refuse:
        raise Conflict("test.refused", f"{code} refused after writing", {"code": code})
    return org.id


def create_org_at_gate(session: Session, *, code: str, gate: str) -> int:
    """Write, then wait (in the writer process) until the test writes to the FIFO ``gate``."""
    org_id = create_org(session, code=code)
    with open(gate, "rb") as fifo:  # opening blocks until the test opens the other end
        fifo.read()
    return org_id


def big_answer(session: Session, *, size: int) -> bytes:
    return b"x" * size


def linger(session: Session, *, seconds: float) -> None:
    time.sleep(seconds)


BATCH_SIZES: list[int] = []


def create_orgs(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The batch form of :func:`create_org_batched`: refusals answered, a fault raised."""
    BATCH_SIZES.append(len(calls))
    if any(call.get("fault") for call in calls):
        raise RuntimeError("a fault in the batch")
    return [
        Conflict("test.refused", "refused")
        if call.get("refuse")
        else create_org(session, code=call["code"])
        for call in calls
    ]


@hotwrite.batched(create_orgs)
def create_org_batched(
    session: Session, *, code: str, refuse: bool = False, fault: bool = False
) -> int:
    result: int = hotwrite.one(create_orgs, session, code=code, refuse=refuse, fault=fault)
    return result


def _codes() -> set[str]:
    with unit_of_work(read_only=True) as session:
        return set(session.scalars(select(Org.code)))


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    COMMITTED.clear()
    BATCH_SIZES.clear()
    LOSSES.clear()
    DROPS.clear()
    writer_hold.reset()
    yield
    writer_hold.released.set()  # never leave the writer thread held
    COMMITTED.clear()


def test_a_failing_job_leaves_nothing_and_the_rest_of_its_batch_commits() -> None:
    first, refused, last = queued_together(
        create_org, {"code": "A"}, {"code": "B", "refuse": True}, {"code": "C"}
    )
    assert isinstance(first, int)
    assert isinstance(last, int)
    assert isinstance(refused, Conflict)
    assert refused.code == "test.refused"
    assert {"A", "C"} <= _codes()
    assert "B" not in _codes()
    assert sorted(COMMITTED) == ["A", "C"]  # B's after-commit effect was rolled back too


def test_a_batched_operation_runs_its_jobs_in_one_call() -> None:
    done = queued_together(
        create_org_batched,
        {"code": "D1", "refuse": False},
        {"code": "D2", "refuse": True},
        {"code": "D3"},
    )
    assert BATCH_SIZES == [3]
    assert isinstance(done[0], int)
    assert isinstance(done[2], int)
    assert isinstance(done[1], Conflict)
    assert {"D1", "D3"} <= _codes()
    assert "D2" not in _codes()


def test_a_fault_in_a_batch_call_falls_back_to_running_each_job_alone() -> None:
    done = queued_together(
        create_org_batched, {"code": "F1"}, {"code": "F2", "fault": True}, {"code": "F3"}
    )
    assert BATCH_SIZES == [3, 1, 1, 1]  # the batch, then each job alone
    assert isinstance(done[0], int)
    assert isinstance(done[2], int)
    assert isinstance(done[1], RuntimeError)
    assert {"F1", "F3"} <= _codes()
    assert "F2" not in _codes()


class _Deadlock(Exception):
    sqlstate = "40P01"  # as psycopg reports PostgreSQL's deadlock_detected


LOSSES: list[str] = []  # codes whose next run loses a deadlock once


def _lose_once(code: str) -> None:
    if code in LOSSES:
        LOSSES.remove(code)
        raise OperationalError("UPDATE ...", {}, _Deadlock("deadlock detected"))


def create_org_or_lose(session: Session, *, code: str) -> int:
    org_id = create_org(session, code=code)
    _lose_once(code)
    return org_id


def create_orgs_or_lose(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Any]:
    outcomes = create_orgs(session, calls)
    for call in calls:
        _lose_once(call["code"])
    return outcomes


@hotwrite.batched(create_orgs_or_lose)
def create_org_batched_or_lose(session: Session, *, code: str) -> int:
    result: int = hotwrite.one(create_orgs_or_lose, session, code=code)
    return result


def test_a_batch_that_loses_a_deadlock_runs_again_whole() -> None:
    LOSSES[:] = ["L2", "R1"]
    batched = queued_together(create_org_batched_or_lose, *({"code": f"L{n}"} for n in range(3)))
    alone = queued_together(create_org_or_lose, {"code": "R0"}, {"code": "R1"})
    # Not run job by job as after a fault: the batch again, as it was; nothing failed.
    assert BATCH_SIZES == [3, 3]
    assert all(isinstance(result, int) for result in [*batched, *alone])
    assert {"L0", "L1", "L2", "R0", "R1"} <= _codes()
    assert sorted(COMMITTED) == ["L0", "L1", "L2", "R0", "R1"]  # each once


def test_a_batch_that_keeps_losing_deadlocks_fails_its_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer_module, "RETRY_PAUSE_S", 0)
    LOSSES[:] = ["X"] * writer_module.MAX_TRIES
    (lost,) = queued_together(create_org_or_lose, {"code": "X"})
    assert isinstance(lost, OperationalError)
    assert not LOSSES  # tried MAX_TRIES times
    assert "X" not in _codes()
    assert COMMITTED == []


DROPS: list[str] = []  # codes whose next run meets the database connection dropped


def _drop_once(code: str) -> None:
    if code in DROPS:
        DROPS.remove(code)
        gone = Exception("server closed the connection unexpectedly")
        raise OperationalError("INSERT ...", {}, gone, connection_invalidated=True)


def create_org_or_drop(session: Session, *, code: str) -> int:
    org_id = create_org(session, code=code)
    _drop_once(code)
    return org_id


def create_orgs_or_drop(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Any]:
    outcomes = create_orgs(session, calls)
    for call in calls:
        _drop_once(call["code"])
    return outcomes


@hotwrite.batched(create_orgs_or_drop)
def create_org_batched_or_drop(session: Session, *, code: str) -> int:
    result: int = hotwrite.one(create_orgs_or_drop, session, code=code)
    return result


@pytest.mark.parametrize("op", [create_org_or_drop, create_org_batched_or_drop])
def test_a_batch_that_meets_the_database_gone_fails_whole_and_the_writer_goes_on(
    op: Any,
) -> None:
    DROPS[:] = ["G1"]
    done = queued_together(op, *({"code": f"G{n}"} for n in range(3)))
    # Every job of the batch refused alike, as a clean 503 (the one that ran before the
    # drop too: its transaction is gone), not run job by job as after a fault.
    assert all(isinstance(error, ServiceUnavailable) for error in done), done
    assert {(error.status_code, error.code) for error in done} == {(503, UNAVAILABLE)}
    assert not {"G0", "G1", "G2"} & _codes()
    assert COMMITTED == []
    assert BATCH_SIZES == ([3] if op is create_org_batched_or_drop else [])
    # The writer thread lives on: the next batch commits.
    (after,) = queued_together(op, {"code": "G3"})
    assert isinstance(after, int)
    assert COMMITTED == ["G3"]


# -- the writer process ---------------------------------------------------------------------


@pytest.fixture
def writer(monkeypatch: pytest.MonkeyPatch) -> Iterator[hotwrite.WriterProcess]:
    """A writer process that also runs this module's operations; this process its client."""
    process = hotwrite.start_writer_process(extra_modules=[__name__])
    monkeypatch.setattr(get_settings(), "hot_writer_socket", process.address)
    monkeypatch.setattr(hotwrite_client, "_client", None)  # no connection to an earlier one
    try:
        yield process
    finally:
        process.stop()


def _gate(tmp_path: Path) -> str:
    gate = str(tmp_path / "gate")
    os.mkfifo(gate)
    return gate


def test_the_writer_process_answers_results_and_domain_errors(
    writer: hotwrite.WriterProcess,
) -> None:
    org_id = hotwrite.run(create_org, code="R1")
    with unit_of_work(read_only=True) as session:
        org = session.get(Org, org_id)
        assert org is not None
        assert org.code == "R1"
    with pytest.raises(Conflict) as caught:
        hotwrite.run(create_org, code="R2", refuse=True)
    assert caught.value.code == "test.refused"
    assert caught.value.message == "R2 refused after writing"
    assert caught.value.details == {"code": "R2"}
    assert caught.value.status_code == 409
    assert "R2" not in _codes()
    with pytest.raises(TypeError, match="module-level"):
        hotwrite.run(lambda session: None)


def test_the_writer_process_runs_only_operations_of_registered_modules(
    writer: hotwrite.WriterProcess,
) -> None:
    with pytest.raises(UnknownOperation, match="gonghui.orgs.service.create_org"):
        hotwrite.run(
            orgs.create_org,
            actor=SYSTEM,
            code="X1",
            name="X1",
            level=OrgLevel.CITY,
            parent_id=None,
        )
    assert "X1" not in _codes()
    assert isinstance(hotwrite.run(create_org, code="X2"), int)


def test_a_job_that_cannot_be_pickled_fails_alone_and_the_writer_goes_on(
    writer: hotwrite.WriterProcess,
) -> None:
    with pytest.raises(TypeError, match="create_org cannot be sent to the writer"):
        hotwrite.run(create_org, code=threading.Lock())  # type: ignore[arg-type]
    assert isinstance(hotwrite.run(create_org, code="P1"), int)
    assert writer.process.is_alive()
    assert "P1" in _codes()


def test_jobs_waiting_on_a_writer_that_dies_fail_as_unavailable_and_leave_nothing(
    writer: hotwrite.WriterProcess, tmp_path: Path
) -> None:
    gate = _gate(tmp_path)
    with ThreadPoolExecutor(2) as pool:
        waiting = pool.submit(hotwrite.run, create_org_at_gate, code="G1", gate=gate)
        # Opening the gate for writing returns once the job waits at it, in the writer.
        fd = pool.submit(os.open, gate, os.O_WRONLY).result(PATIENCE_S)
        try:
            os.kill(writer.process.pid or 0, signal.SIGKILL)
            with pytest.raises(hotwrite.WriterUnavailable) as caught:
                waiting.result(PATIENCE_S)
        finally:
            os.close(fd)
    assert caught.value.code == "server.writer_unavailable"
    assert caught.value.status_code == 503
    with pytest.raises(hotwrite.WriterUnavailable):  # and so does every job after
        hotwrite.run(create_org, code="G2")
    assert not {"G1", "G2"} & _codes()  # G1's uncommitted batch died with the writer


def _flood(address: str, jobs: int, size: int, sent: Event) -> None:
    """A server process that sends ``jobs`` jobs with big answers, then waits for them."""
    client = hotwrite_client.Client(address)
    futures = [client.submit(big_answer, {"size": size}) for _ in range(jobs)]
    sent.set()  # every job is in the writer's socket
    for future in futures:
        future.result()


def test_a_stopped_server_process_is_given_up_and_the_writer_serves_the_others(
    writer: hotwrite.WriterProcess, tmp_path: Path
) -> None:
    gate = _gate(tmp_path)
    context = multiprocessing.get_context("spawn")
    sent = context.Event()
    # Answers far beyond what a socket buffers: sending them blocks on the stopped reader.
    stopped = context.Process(target=_flood, args=(writer.address, 32, 256 * 1024, sent))
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(hotwrite.run, create_org_at_gate, code="S0", gate=gate)
        fd = pool.submit(os.open, gate, os.O_WRONLY).result(PATIENCE_S)
        try:
            stopped.start()
            assert sent.wait(PATIENCE_S)  # its jobs queue behind the held one
            os.kill(stopped.pid or 0, signal.SIGSTOP)
        finally:
            os.close(fd)  # the writer goes on: the held job, then the stopped process's
        try:
            assert isinstance(held.result(PATIENCE_S), int)
            after: Future[int] = pool.submit(hotwrite.run, create_org, code="S1")
            assert isinstance(after.result(PATIENCE_S), int)
        finally:
            stopped.kill()
            stopped.join(PATIENCE_S)
    assert writer.process.is_alive()
    assert {"S0", "S1"} <= _codes()


def test_every_hot_write_of_a_member_burst_runs_in_batches() -> None:
    """The batch form stays on its operation (a helper once landed between a decorator and
    ``cast``, and votes ran one at a time: the vote benchmark fell to half)."""
    assert hotwrite.batch_form(draw.draw) is draw.draw_many
    assert hotwrite.batch_form(cast.cast) is cast.cast_many
    assert hotwrite.batch_form(claims.claim) is claims.claim_many
    assert hotwrite.batch_form(checkout.checkout) is checkout.checkout_many
    assert hotwrite.batch_form(write.insert_one) is write.insert_many


def test_a_batch_form_on_anything_but_an_operation_is_refused_at_once() -> None:
    def helper(activity_id: int) -> str:
        return str(activity_id)

    with pytest.raises(TypeError, match="not a hot operation"):
        hotwrite.batched(lambda session, calls: [])(helper)


def test_a_busy_writer_tells_the_host_and_its_figure_lapses_when_it_goes_idle() -> None:
    hotwrite.run(linger, seconds=0)  # ends whatever window the writer had open
    hotwrite.run(linger, seconds=2 * load.WINDOW_S)  # a window spent running a batch
    assert load.share() > load.BUSY_SHARE
    assert hotwrite.busy()
    time.sleep(load.STALE_S)
    assert load.share() == 0.0
    assert not hotwrite.busy()
    hotwrite.run(linger, seconds=0)
    time.sleep(load.WINDOW_S)
    hotwrite.run(linger, seconds=0)  # a window spent waiting for work
    assert 0.0 <= load.share() < load.BUSY_SHARE


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", load._FIGURE.pack(float("nan"), 1.0), load._FIGURE.pack(0.0, 1.0)],
)
def test_a_figure_that_is_missing_torn_or_stale_reads_as_not_busy(
    tmp_path: Path, content: bytes
) -> None:
    figure = tmp_path / load.FILE_NAME
    assert load.share(figure) == 0.0
    figure.write_bytes(content)
    assert load.share(figure) == 0.0
    figure.write_bytes(load._FIGURE.pack(time.time(), 7.0))  # out of range
    assert load.share(figure) == 0.0
    figure.write_bytes(load._FIGURE.pack(time.time(), 0.75))
    assert load.share(figure) == 0.75

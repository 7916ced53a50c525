"""The hot writer: jobs batched into one transaction stay independent of each other, and
the writer process answers with the job's own result or error."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hotwrite
from gonghui.db import on_commit, unit_of_work
from gonghui.errors import Conflict
from gonghui.orgs import service as orgs
from gonghui.orgs.models import Org, OrgLevel
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM

COMMITTED: list[str] = []
_busy = threading.Event()


def hold_writer(session: Session, *, seconds: float) -> str:
    _busy.set()
    time.sleep(seconds)
    return "held"


def create_org(session: Session, *, code: str, refuse: bool = False) -> int:
    org = orgs.create_org(
        session, actor=SYSTEM, code=code, name=code, level=OrgLevel.CITY, parent_id=None
    )
    on_commit(session, lambda: COMMITTED.append(code))
    if refuse:
        raise Conflict("test.refused", f"{code} refused after writing", {"code": code})
    return org.id


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
    _busy.clear()
    yield
    COMMITTED.clear()


def test_a_failing_job_leaves_nothing_and_the_rest_of_its_batch_commits() -> None:
    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(hotwrite.run, hold_writer, seconds=0.5)
        assert _busy.wait(5)  # the writer is busy: the next three queue into one batch
        first = pool.submit(hotwrite.run, create_org, code="A")
        refused = pool.submit(hotwrite.run, create_org, code="B", refuse=True)
        last = pool.submit(hotwrite.run, create_org, code="C")
        assert held.result(10) == "held"
        assert isinstance(first.result(10), int)
        assert isinstance(last.result(10), int)
        with pytest.raises(Conflict) as caught:
            refused.result(10)
    assert caught.value.code == "test.refused"
    assert {"A", "C"} <= _codes()
    assert "B" not in _codes()
    assert sorted(COMMITTED) == ["A", "C"]  # B's after-commit effect was rolled back too


def _queued_together(*jobs: dict[str, Any]) -> list[Any]:
    """Run ``jobs`` in one batch (queued behind a busy writer); each result or error."""
    with ThreadPoolExecutor(len(jobs) + 1) as pool:
        held = pool.submit(hotwrite.run, hold_writer, seconds=0.5)
        assert _busy.wait(5)
        futures = [pool.submit(hotwrite.run, create_org_batched, **job) for job in jobs]
        assert held.result(10) == "held"
        return [f.exception(10) or f.result(10) for f in futures]


def test_a_batched_operation_runs_its_jobs_in_one_call() -> None:
    BATCH_SIZES.clear()
    done = _queued_together(
        {"code": "D1", "refuse": False}, {"code": "D2", "refuse": True}, {"code": "D3"}
    )
    assert BATCH_SIZES == [3]
    assert isinstance(done[0], int)
    assert isinstance(done[2], int)
    assert isinstance(done[1], Conflict)
    assert {"D1", "D3"} <= _codes()
    assert "D2" not in _codes()


def test_a_fault_in_a_batch_call_falls_back_to_running_each_job_alone() -> None:
    BATCH_SIZES.clear()
    done = _queued_together({"code": "F1"}, {"code": "F2", "fault": True}, {"code": "F3"})
    assert BATCH_SIZES == [3, 1, 1, 1]  # the batch, then each job alone
    assert isinstance(done[0], int)
    assert isinstance(done[2], int)
    assert isinstance(done[1], RuntimeError)
    assert {"F1", "F3"} <= _codes()
    assert "F2" not in _codes()


def test_the_writer_process_answers_results_and_domain_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = hotwrite.start_writer_process()
    try:
        monkeypatch.setattr(get_settings(), "hot_writer_socket", writer.address)
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
    finally:
        writer.stop()

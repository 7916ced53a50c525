"""The hot writer: jobs batched into one transaction stay independent of each other, and
the writer process answers with the job's own result or error."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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

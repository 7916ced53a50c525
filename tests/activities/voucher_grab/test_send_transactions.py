"""Coupon sends run in groups that write twice: the run's start (each row's attempt counted,
its lease taken) and every answer, with the rows' completion in the answers' own
transaction. A claim WeChat Pay did not answer is retried alone, by its own count. A
worker that dies between WeChat Pay's answers and that transaction leaves both undone: the
sends run again with the same out_request_no and WeChat Pay answers with the coupons it
sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection

from gonghui import clock, tasks
from gonghui.activities.voucher_grab import claims
from gonghui.db import get_engine, unit_of_work
from gonghui.integrations import wechatpay_simulator as sim
from gonghui.settings import get_settings
from gonghui.tasks import queue
from gonghui.tasks.models import Task
from tests.activities.conftest import MemberFactory
from tests.activities.voucher_grab.conftest import (
    claimants,
    faults,
    grab,
    ledger,
    my_claims,
)
from tests.activities.voucher_grab.conftest import wechat_stock as stock_at_wechat
from tests.fixtures import Tree


@pytest.fixture
def unpaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pacing of WeChat Pay calls: its counter's writes are not the send's."""
    monkeypatch.setattr(get_settings(), "wechatpay_calls_per_s", 0)


@pytest.fixture
def write_commits() -> Iterator[list[int]]:
    """Counts the write transactions committed while the test runs (reads left out)."""
    counted = [0]

    def commit(conn: Connection) -> None:
        options = conn.get_execution_options()
        if not (options.get("sqlite_query_only") or options.get("postgresql_readonly")):
            counted[0] += 1

    engine = get_engine()
    event.listen(engine, "commit", commit)
    yield counted
    event.remove(engine, "commit", commit)


def _sent_task() -> tuple[str, int, str]:
    """Claim the one due send for running, as a relay does."""
    ((task_id, name, token, *_),) = queue.claim_due()
    assert name == claims.SEND_COUPON
    return name, task_id, token


def _task_row(task_id: int) -> tuple[str, int]:
    with unit_of_work(read_only=True) as session:
        row = session.execute(select(Task.status, Task.attempts).where(Task.id == task_id)).one()
        return str(row.status), int(row.attempts)


@pytest.mark.usefixtures("unpaced")
def test_a_coupon_sent_costs_two_write_transactions(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    write_commits: list[int],
) -> None:
    activity_id, stock_id = grab(api, tree, operator)
    (member,) = claimants(api, make_member, tree.district_a1, activity_id, stock_id)
    name, task_id, token = _sent_task()

    before = write_commits[0]
    assert queue.execute(name, task_id, token) == "done"
    assert write_commits[0] - before == 2  # the run's start; the coupon sent and the task done

    assert _task_row(task_id) == ("done", 1)
    assert [c["state"] for c in my_claims(api, member)] == ["sent"]
    assert ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]


@pytest.mark.usefixtures("unpaced")
def test_a_group_of_coupons_costs_two_write_transactions_and_an_unanswered_one_goes_again(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    write_commits: list[int],
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=5)
    members = claimants(api, make_member, tree.district_a1, activity_id, stock_id, 5)
    faults(api, "lost")  # one of the five is sent, but its answer never arrives
    name, task_id, token = _sent_task()

    before = write_commits[0]
    assert queue.execute(name, task_id, token) == "done"
    assert write_commits[0] - before == 2  # the run's start; every answer and the completions
    assert sim.send_calls() == 5
    states = [c["state"] for m in members for c in my_claims(api, m)]
    assert sorted(states) == ["sending"] + ["sent"] * 4
    with unit_of_work(read_only=True) as session:
        task_rows = session.execute(
            select(Task.status, Task.attempts, Task.last_error)
            .where(Task.name == claims.SEND_COUPON)
            .order_by(Task.id)
        ).all()
    assert sorted((r.status, r.attempts) for r in task_rows) == [("done", 1)] * 4 + [("queued", 1)]
    assert [r.last_error for r in task_rows if r.status == "queued"][0]

    clock.advance(timedelta(minutes=5))  # past its backoff
    assert tasks.run_due() == 1  # the unanswered one alone
    assert sim.send_calls() == 6
    assert [c["state"] for m in members for c in my_claims(api, m)] == ["sent"] * 5
    assert len({c["coupon_id"] for m in members for c in my_claims(api, m)}) == 5
    assert stock_at_wechat(activity_id)["distributed_coupons"] == 5  # none sent twice
    for member in members:
        assert ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]


class _Killed(BaseException):
    """The worker killed: nothing after it runs, not even the task's own bookkeeping."""


@pytest.mark.usefixtures("unpaced")
def test_a_worker_killed_after_wechat_pay_answered_sends_no_second_coupon(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity_id, stock_id = grab(api, tree, operator)
    (member,) = claimants(api, make_member, tree.district_a1, activity_id, stock_id)
    name, task_id, token = _sent_task()

    def killed(*args: Any) -> None:
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(claims, "_sent", killed)  # WeChat Pay answered; nothing recorded
        with pytest.raises(_Killed):
            queue.execute(name, task_id, token)
    assert sim.send_calls() == 1
    assert _task_row(task_id) == ("queued", 1)  # neither the outcome nor the completion
    assert [c["state"] for c in my_claims(api, member)] == ["sending"]
    assert tasks.run_due() == 0  # its lease holds it until the run's time limit passes

    clock.advance(timedelta(hours=1))
    assert tasks.run_due() == 1
    assert sim.send_calls() == 2  # asked again, with the same out_request_no
    assert stock_at_wechat(activity_id)["distributed_coupons"] == 1
    (sent,) = my_claims(api, member)
    assert sent["state"] == "sent"
    assert ledger(member.membership_id) == [("issue", 1000, "wechatpay.coupon_sent")]
    assert _task_row(task_id) == ("done", 2)

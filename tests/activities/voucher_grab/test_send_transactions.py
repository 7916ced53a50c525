"""A coupon's send writes twice: the run's start (its attempt counted, its lease taken) and
its outcome, with the task's completion in the outcome's own transaction. A worker that
dies between WeChat Pay's answer and that transaction leaves both undone: the send runs
again with the same out_request_no and WeChat Pay answers with the coupon it sent."""

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
from tests.activities.voucher_grab.conftest import claim, grab, ledger, link_wechat, my_claims
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
    member = make_member(tree.district_a1)
    link_wechat(member)
    assert claim(api, activity_id, stock_id, member).status_code == 201
    name, task_id, token = _sent_task()

    before = write_commits[0]
    assert queue.execute(name, task_id, token) == "done"
    assert write_commits[0] - before == 2  # the run's start; the coupon sent and the task done

    assert _task_row(task_id) == ("done", 1)
    assert [c["state"] for c in my_claims(api, member)] == ["sent"]
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
    member = make_member(tree.district_a1)
    link_wechat(member)
    assert claim(api, activity_id, stock_id, member).status_code == 201
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

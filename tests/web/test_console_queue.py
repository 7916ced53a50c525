"""A platform admin reads the task queue in the console and runs a dead task again; other
staff have no link to it and are refused."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from gonghui import tasks
from gonghui.audit.models import AuditEntry
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from gonghui.tasks.models import Task
from tests.fixtures import StaffFactory, Tree, WriterLoad
from tests.operations import conftest as operations  # registers the test kinds
from tests.web.conftest import axe, shot
from tests.web.pages import sign_in_to_console


def _wait_until_dead(task_id: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with unit_of_work(read_only=True) as session:
            if session.scalar(select(Task.status).where(Task.id == task_id)) == "dead":
                return
        time.sleep(0.05)
    raise AssertionError("the task was not dead-lettered in time")


@pytest.mark.expected_console_errors("status of 403")
def test_platform_admin_sees_the_queue_and_runs_a_dead_task_again(
    desktop: Page, tree: Tree, make_staff: StaffFactory, writer_load: WriterLoad
) -> None:
    assert operations.job is not None
    writer_load(0.9)  # members' hot writes keep the writer busy: sends give way
    with unit_of_work() as session:
        task_id = tasks.defer(session, "tests.ops_job", fail=True)
        tasks.defer(session, "tests.ops_report", delay_s=3600)
        tasks.defer(session, "tests.ops_send")
    _wait_until_dead(task_id)

    operator = make_staff(tree.province, Role.ADMIN)
    sign_in_to_console(desktop, operator.username)
    expect(desktop.get_by_role("link", name="任务队列")).to_have_count(0)
    desktop.goto("/console/queue")
    expect(desktop.get_by_role("alert")).to_have_text("您的角色不能使用这个栏目")
    desktop.get_by_role("button", name="退出登录").click()

    admin = make_staff(None, None, platform_admin=True)
    sign_in_to_console(desktop, admin.username)
    desktop.get_by_role("link", name="任务队列").click()
    expect(desktop.get_by_role("heading", level=1)).to_have_text("任务队列")
    counts = desktop.get_by_role("region", name="各任务数量")
    expect(counts.get_by_role("columnheader")).to_have_text(
        ["任务", "待执行", "暂缓（让行会员操作）", "延迟/等待重试", "执行中", "已失败"]
    )
    expect(counts.get_by_role("row", name="tests.ops_report").get_by_role("cell")).to_have_text(
        ["tests.ops_report", "0", "0", "1", "0", "0"]
    )
    expect(counts.get_by_role("row", name="tests.ops_send").get_by_role("cell")).to_have_text(
        ["tests.ops_send", "0", "1", "0", "0", "0"]
    )
    expect(desktop.get_by_role("region", name="在线工作进程").locator("tbody tr")).to_have_count(1)
    dead = desktop.get_by_role("region", name="失败任务")
    expect(dead.get_by_role("row", name=str(task_id))).to_contain_text(
        "RuntimeError: the receiver is down"
    )
    shot(desktop, "console-queue")
    assert axe(desktop) == []

    dead.get_by_role("button", name=f"重新执行任务 {task_id}").click()
    expect(desktop.get_by_role("status")).to_have_text("任务已重新加入队列")
    with unit_of_work(read_only=True) as session:
        audits = session.scalars(
            select(AuditEntry.subject_id).where(AuditEntry.action == "tasks.requeue")
        ).all()
    assert audits == [str(task_id)]
    _wait_until_dead(task_id)  # the worker ran it again; it failed again

    desktop.goto(desktop.url.split("?")[0] + "?lang=en")
    expect(desktop.get_by_role("heading", level=1)).to_have_text("Task queue")
    shot(desktop, "console-queue-en")

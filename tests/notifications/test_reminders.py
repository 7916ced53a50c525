""" "Remind me": a member of a scheduled activity is told when it starts, once."""

from __future__ import annotations

from datetime import timedelta

import httpx

from gonghui import clock, tasks
from gonghui.db import unit_of_work
from gonghui.notifications import reminders, service
from gonghui.orgs.models import Role
from tests.activities.conftest import create_activity
from tests.fixtures import StaffFactory, Tree
from tests.notifications.conftest import MemberFactory


def test_a_member_is_reminded_when_the_activity_starts(
    tree: Tree, api: httpx.Client, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    operator = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api, operator.headers, tree.city_a, starts_in_hours=2, title="元旦抽奖"
    )
    member = make_member(tree.grassroots_a1x)
    outsider = make_member(tree.grassroots_b1)
    url = f"/api/v1/notifications/reminders/{activity['id']}"
    assert api.put(url, headers=member.headers).json() == {
        "activity_id": activity["id"],
        "reminded": True,
    }
    assert api.put(url, headers=member.headers).status_code == 200  # twice is once
    assert api.put(url, headers=outsider.headers).status_code == 404

    with unit_of_work() as session:
        assert reminders.send_due(session) == 0
    clock.advance(timedelta(hours=2, minutes=1))
    with unit_of_work() as session:
        assert reminders.send_due(session) == 1
        assert reminders.send_due(session) == 0
    tasks.run_due()
    with unit_of_work(read_only=True) as session:
        latest = service.inbox(session, user_id=member.user_id)[0]
    assert (latest.event, latest.title) == ("activity_starting", "活动开始提醒")
    assert latest.body == "您关注的「元旦抽奖」已经开始，快来参加吧。"
    # Once started there is nothing left to wait for.
    assert api.put(url, headers=member.headers).status_code == 409

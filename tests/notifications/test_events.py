"""The business events that notify a member, as the hook bus carries them."""

from __future__ import annotations

import pytest

from gonghui import hooks, tasks
from gonghui.activities.models import Activity, ActivityKind
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.notifications import service
from tests.fixtures import Tree
from tests.notifications.conftest import MemberFactory


@pytest.mark.parametrize(
    ("event", "payload", "title", "body"),
    [
        (
            hooks.OrgEvent.VOUCHER_ISSUED,
            {"amount_cents": 2000},
            "消费券到账",
            "您在「冬季消费券」领取的20元消费券已到账。",
        ),
        (
            hooks.OrgEvent.ORDER_SHIPPED,
            {"order_id": 42, "courier_company": "顺丰", "courier_no": "SF123"},
            "订单已发货",
            "您的订单42已由顺丰发出，运单号SF123。",
        ),
        (
            hooks.OrgEvent.PRIZE_WON,
            {"draw_id": 1, "prize": {"name": "电饭煲", "kind": "goods", "value": 0}},
            "中奖通知",
            "恭喜您在「冬季消费券」中获得电饭煲，请在会员中心查看。",
        ),
    ],
)
def test_an_event_of_the_members_business_reaches_their_inbox(
    tree: Tree,
    make_member: MemberFactory,
    event: hooks.OrgEvent,
    payload: dict[str, object],
    title: str,
    body: str,
) -> None:
    member = make_member(tree.grassroots_a1x)
    with unit_of_work() as session:
        activity = Activity(
            org_id=tree.city_a,
            kind=ActivityKind.VOUCHER_GRAB,
            title="冬季消费券",
            starts_at=now(),
            ends_at=now(),
            config={},
        )
        session.add(activity)
        session.flush()
        hooks.emit(
            session,
            org_id=tree.grassroots_a1x,
            event=event,
            payload={
                "activity_id": activity.id,
                "membership_id": member.membership_id,
                **payload,
            },
        )
    tasks.run_due()
    with unit_of_work(read_only=True) as session:
        latest = service.inbox(session, user_id=member.user_id)[0]
    assert (latest.title, latest.body) == (title, body)


def test_a_rolled_back_change_notifies_no_one(tree: Tree, make_member: MemberFactory) -> None:
    member = make_member(tree.grassroots_a1x)

    def ship_then_fail() -> None:
        with unit_of_work() as session:
            hooks.emit(
                session,
                org_id=tree.grassroots_a1x,
                event=hooks.OrgEvent.ORDER_SHIPPED,
                payload={"membership_id": member.membership_id, "order_id": 1},
            )
            raise RuntimeError("the shipping failed")

    with pytest.raises(RuntimeError):
        ship_then_fail()
    assert tasks.run_due() == 0
    with unit_of_work(read_only=True) as session:
        assert len(service.inbox(session, user_id=member.user_id)) == 1  # the verification

"""Two writers on PostgreSQL: a batch's first try reads stock and budget without locking
them and takes them at its end; when another writer took them meanwhile, the batch runs
again, locking them first, and its draws get the outcomes the stock left allows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gonghui.accounts.principal import load
from gonghui.activities.lottery import draw as draw_module
from gonghui.activities.lottery.models import Draw, PoolPrize
from gonghui.benefits.models import Budget, Voucher
from gonghui.db import get_engine, unit_of_work
from gonghui.hotwrite.writer import local_writer
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.activities.conftest import MemberFactory, create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree

pytestmark = pytest.mark.skipif(
    get_settings().is_sqlite, reason="SQLite has one writer: nothing takes stock meanwhile"
)

PATIENCE_S = 60


def draw_together(session: Session, *, calls: list[dict[str, Any]]) -> list[Any]:
    """Both draws in one batch form call, as one job of the writer."""
    return draw_module.draw_many(session, calls)


def test_stock_taken_by_another_writer_meanwhile_runs_the_batch_again_with_locks(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity_id = create_activity(
        api,
        op.headers,
        tree.city_a,
        config=lottery_config(
            [{"name": "十元券", "kind": "voucher", "weight": 1, "stock": 2, "value": 1000}],
            free_draws_per_day=1,
            max_wins_per_member=None,
        ),
        budget_cents=5000,
    )["id"]
    members = [make_member(tree.city_a) for _ in range(2)]
    with unit_of_work() as session:
        infos = [load(session, user_id=m.user_id, session_id=m.session_id).member for m in members]

    issued: list[int] = []
    real_issue = draw_module._issue

    def issue_while_another_writer_takes(session: Session, *args: Any) -> None:
        # On the first run only: another writer wins the last unit and commits, through a
        # connection of its own that waits at most 2 s for a lock this batch might hold.
        if not issued:
            with get_engine().connect() as other:
                other.execute(text("SET lock_timeout = '2s'"))
                other.execute(
                    text(
                        "UPDATE activities_lottery_prize SET stock = stock - 1 "
                        "WHERE activity_id = :a AND stock >= 1"
                    ),
                    {"a": activity_id},
                )
                other.commit()
        issued.append(len(args[-1]))
        real_issue(session, *args)

    monkeypatch.setattr(draw_module, "_issue", issue_while_another_writer_takes)
    calls = [
        {"member": info, "activity_id": activity_id, "client_entropy": f"e{n}"}
        | {"idempotency_key": None}
        for n, info in enumerate(infos)
    ]
    answers = local_writer.submit(draw_together, {"calls": calls}).result(PATIENCE_S)

    # The first run counted on two units and issued two vouchers; one was gone at its end.
    # The batch ran again (one voucher left to issue): one member wins, one finds it out of
    # stock, as if the other writer's draw had come first.
    assert issued[0] == 2
    assert issued[-1] == 1
    assert sorted(a["outcome"] for a in answers) == ["out_of_stock", "won"]
    with unit_of_work(read_only=True) as session:
        assert (
            session.scalar(select(PoolPrize.stock).where(PoolPrize.activity_id == activity_id)) == 0
        )
        assert (
            session.scalar(select(Budget.cents_spent).where(Budget.activity_id == activity_id))
            == 1000
        )
        vouchers = session.scalars(select(Voucher).where(Voucher.activity_id == activity_id)).all()
        assert len(vouchers) == 1
        outcomes = sorted(
            session.scalars(select(Draw.outcome).where(Draw.activity_id == activity_id))
        )
        assert outcomes == ["out_of_stock", "won"]

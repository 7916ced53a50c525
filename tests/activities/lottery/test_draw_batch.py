"""A batch of draws, as the hot writer runs it, gives every draw the outcome it would have
had drawn alone, one after another in batch order (a member's second draw in the batch
after everyone's first), and leaves the same counters, stock, budget, wallet, ledger and
stored idempotent answers behind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hotwrite
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.lottery.draw import draw, draw_many
from gonghui.activities.lottery.models import Draw, PoolPrize
from gonghui.activities.models import Counter
from gonghui.benefits.models import Budget, LedgerEntry, PointsAccount, Prize, Voucher
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.hotwrite.writer import local_writer
from gonghui.idempotency import IdempotentResponse
from gonghui.notifications import events
from gonghui.orgs.models import Role
from gonghui.tasks.models import Task
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    lottery_config,
    member_info,
    one_by_one,
    stored_keys,
)
from tests.fixtures import StaffFactory, Tree, statements
from tests.writer_hold import PATIENCE_S, busy, hold_writer, released, reset


def _call(info: MemberInfo, activity_id: int, key: str | None = None) -> dict[str, Any]:
    return {
        "member": info,
        "activity_id": activity_id,
        "client_entropy": f"e{info.membership_id}",
        "idempotency_key": key,
    }


def _seen(outcome: Any) -> Any:
    """What a member sees of an answer, without row ids and times (which differ between the
    two runs)."""
    if isinstance(outcome, DomainError):
        return outcome.code
    return {k: v for k, v in outcome.items() if k not in ("draw_id", "at", "benefit")} | {
        "benefit": (outcome["benefit"] or "").split(":")[0]
    }


def _state(session: Session, activity_ids: Sequence[int]) -> dict[str, Any]:
    rows = session.execute
    return {
        "counters": sorted(
            rows(
                select(Counter.activity_id, Counter.membership_id, Counter.scope, Counter.used)
            ).all()
        ),
        "stock": sorted(rows(select(PoolPrize.activity_id, PoolPrize.stock)).all()),
        "budget": sorted(rows(select(Budget.activity_id, Budget.cents_spent)).all()),
        "vouchers": sorted(rows(select(Voucher.membership_id, Voucher.value_cents)).all()),
        "prizes": sorted(rows(select(Prize.membership_id, Prize.name)).all()),
        "points": sorted(rows(select(PointsAccount.membership_id, PointsAccount.balance)).all()),
        "ledger": sorted(
            rows(select(LedgerEntry.membership_id, LedgerEntry.kind, LedgerEntry.amount)).all()
        ),
        "draws": sorted(
            rows(
                select(Draw.activity_id, Draw.membership_id, Draw.draw_no, Draw.outcome).where(
                    Draw.activity_id.in_(activity_ids)
                )
            ).all()
        ),
        "keys": stored_keys(session),
    }


@pytest.mark.parametrize("first_try", [False, True])
def test_a_batch_draws_as_the_same_draws_one_by_one(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
    first_try: bool,
) -> None:
    # A writer's first try (on PostgreSQL: stock and budget read unlocked, taken at the end).
    monkeypatch.setattr(hotwrite, "first_try", lambda session: first_try)
    op = make_staff(tree.city_a, Role.OPERATOR)
    # Every draw picks the only prize, so the outcomes below do not depend on the rolls.
    vouchers = create_activity(
        api,
        op.headers,
        tree.city_a,
        config=lottery_config(
            [{"name": "十元券", "kind": "voucher", "weight": 1, "stock": 3, "value": 1000}],
            free_draws_per_day=2,
            max_wins_per_member=1,
        ),
        budget_cents=2500,
    )["id"]
    physical = create_activity(
        api,
        op.headers,
        tree.city_a,
        config=lottery_config(
            [{"name": "保温杯", "kind": "physical", "weight": 1, "stock": 1}],
            free_draws_per_day=1,
            max_wins_per_member=None,
        ),
    )["id"]
    limited = create_activity(
        api,
        op.headers,
        tree.city_a,
        config=lottery_config(
            [{"name": "积分", "kind": "points", "weight": 1, "stock": 10, "value": 50}],
            free_draws_per_day=5,
            max_wins_per_member=None,
        ),
        limit_total=1,
    )["id"]
    m = [make_member(tree.city_a) for _ in range(8)]
    outsider = make_member(tree.city_b)
    with unit_of_work() as session:
        info = [member_info(session, member) for member in m]
        stranger = member_info(session, outsider)
        counters.grant(
            session,
            activity_id=physical,
            membership_id=info[7].membership_id,
            scope="earned",
            units=1,
        )
        session.add(
            IdempotentResponse(
                membership_id=info[3].membership_id,
                key="x",
                operation="benefits.claim:1",
                body={"id": 1},
            )
        )
    calls = [
        _call(info[0], vouchers, key="a"),  # wins (budget 1,000 of 2,500)
        _call(info[1], vouchers),  # wins (2,000 of 2,500)
        _call(info[0], vouchers, key="a"),  # a retry: the first answer again
        _call(info[2], vouchers),  # stock left, budget not
        _call(info[0], vouchers),  # a second free chance, but capped at one win
        _call(info[3], vouchers, key="x"),  # the key was used for something else
        _call(info[4], physical),  # wins the one cup
        _call(info[5], physical),  # out of stock
        _call(info[4], physical),  # one free draw a day only
        _call(stranger, vouchers),  # not in the member's org chain
        _call(info[6], 999_999),  # no such activity
        _call(info[7], physical),  # the free chance
        _call(info[7], physical),  # then the earned one
        _call(info[7], physical),  # then none
        _call(info[1], limited),  # counts against the limit of one
        _call(info[1], limited),  # over the limit: the chance is given back
    ]
    with unit_of_work() as session:
        batch = session.begin_nested()
        batched = draw_many(session, calls)
        after_batch = _state(session, [vouchers, physical, limited])
        batch.rollback()
        alone = one_by_one(session, draw, calls)
        after_alone = _state(session, [vouchers, physical, limited])
        session.rollback()

    seen = [_seen(outcome) for outcome in batched]
    assert seen == [_seen(outcome) for outcome in alone]
    assert after_batch == after_alone
    assert [s if isinstance(s, str) else s["outcome"] for s in seen] == [
        "won",
        "won",
        "won",
        "budget_exhausted",
        "win_cap",
        "activities.idempotency_key_reused",
        "won",
        "out_of_stock",
        "lottery.no_chances",
        "activity.not_found",
        "activity.not_found",
        "out_of_stock",
        "out_of_stock",
        "lottery.no_chances",
        "won",
        "activities.limit_total_reached",
    ]
    assert batched[2] == batched[0]  # the retry is the stored answer, draw id and all
    assert [s["chances_left"] for s in seen[:2]] == [1, 1]
    assert seen[14]["chances_left"] == 4  # and the refused draw's chance was given back
    assert after_batch["vouchers"] == sorted(
        [(info[0].membership_id, 1000), (info[1].membership_id, 1000)]
    )
    assert (vouchers, 1) in after_batch["stock"]
    assert (vouchers, 2000) in after_batch["budget"]
    keys = after_batch["keys"]
    assert (info[0].membership_id, "a", f"lottery.draw:{vouchers}", True) in keys


def test_a_batchs_wins_are_told_to_the_hook_bus_at_once_each_as_its_request(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    """Every win of a batch of draws is one member's notification, deferred with one INSERT
    for the whole batch (not one per win), each task carrying its member's request id."""
    op = make_staff(tree.city_a, Role.OPERATOR)
    activity = create_activity(
        api,
        op.headers,
        tree.city_a,
        config=lottery_config(
            [{"name": "十元券", "kind": "voucher", "weight": 1, "stock": 10, "value": 1000}],
            free_draws_per_day=1,
            max_wins_per_member=1,
        ),
    )["id"]
    members = [make_member(tree.city_a) for _ in range(4)]
    with unit_of_work() as session:
        infos = [member_info(session, member) for member in members]
    reset()
    held = local_writer.submit(hold_writer, {})
    assert busy.wait(PATIENCE_S)
    with statements() as seen:
        futures = [
            local_writer.submit(draw, _call(info, activity), request_id=f"req-{n}")
            for n, info in enumerate(infos)
        ]
        released.set()
        assert held.result(PATIENCE_S) == "held"
        assert all(f.result(PATIENCE_S)["won"] for f in futures)
    assert len([s for s in seen if s.startswith("INSERT INTO tasks_task")]) == 1
    with unit_of_work(read_only=True) as session:
        told = session.execute(
            select(Task.args, Task.request_id).where(Task.name == events.ON_EVENT)
        ).all()
    won = {
        args["payload"]["membership_id"]: request_id
        for args, request_id in told
        if args["event"] == "prize_won" and args["payload"]["activity_id"] == activity
    }
    assert won == {info.membership_id: f"req-{n}" for n, info in enumerate(infos)}

"""Two writers on PostgreSQL: a batch of claims' first try reads the stock and the orgs'
shares without locking them and takes them at its end; when another writer took them
meanwhile, the batch runs again, locking them first, and its claims get the outcomes what
is left allows: never past the stock nor a share."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gonghui.activities.voucher_grab import claims as claims_module
from gonghui.activities.voucher_grab.models import OrgShare, VoucherClaim, VoucherStock
from gonghui.db import get_engine, unit_of_work
from gonghui.errors import DomainError
from gonghui.hotwrite.writer import local_writer
from gonghui.settings import get_settings
from gonghui.tasks.models import Task
from tests.activities.conftest import MemberFactory, member_info
from tests.activities.voucher_grab.conftest import grab, link_wechat
from tests.fixtures import Tree

pytestmark = pytest.mark.skipif(
    get_settings().is_sqlite, reason="SQLite has one writer: nothing takes stock meanwhile"
)

PATIENCE_S = 60


def claim_together(session: Session, *, calls: list[dict[str, Any]]) -> list[Any]:
    """The claims in one batch form call, as one job of the writer."""
    return claims_module.claim_many(session, calls)


def _meanwhile(
    monkeypatch: pytest.MonkeyPatch, statement: str, params: dict[str, Any]
) -> list[int]:
    """On the batch's first run only, as it writes its claims, another writer runs
    ``statement`` and commits, through a connection of its own that waits at most 2 s for a
    lock the batch might hold. Returns how many claims each run wrote."""
    written: list[int] = []
    real_write = claims_module._write

    def write_while_another_writer_takes(session: Session, claims: list[Any]) -> None:
        if not written:
            with get_engine().connect() as other:
                other.execute(text("SET lock_timeout = '2s'"))
                other.execute(text(statement), params)
                other.commit()
        written.append(len(claims))
        real_write(session, claims)

    monkeypatch.setattr(claims_module, "_write", write_while_another_writer_takes)
    return written


def _claims_and_sends(activity_id: int) -> tuple[int, int]:
    with unit_of_work(read_only=True) as session:
        held = select(func.count()).where(VoucherClaim.activity_id == activity_id)
        sends = select(func.count()).where(Task.name == claims_module.SEND_COUPON)
        return session.scalar(held) or 0, session.scalar(sends) or 0


def test_stock_taken_by_another_writer_meanwhile_runs_the_batch_again_with_locks(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=2)
    members = [make_member(tree.district_a1) for _ in range(2)]
    for member in members:
        link_wechat(member)
    with unit_of_work() as session:
        infos = [member_info(session, member) for member in members]
    written = _meanwhile(
        monkeypatch,
        "UPDATE vouchers_stock SET claimed = claimed + 1 WHERE id = :s AND claimed < max_coupons",
        {"s": stock_id},
    )
    calls = [
        {"member": info, "activity_id": activity_id, "stock_id": stock_id, "idempotency_key": None}
        for info in infos
    ]
    answers = local_writer.submit(claim_together, {"calls": calls}).result(PATIENCE_S)

    # The first run counted on two coupons and wrote two claims; one was gone at its end.
    # The batch ran again: the first member gets the last coupon, the second finds none.
    assert written == [2, 1]
    assert isinstance(answers[0], dict)
    assert answers[0]["state"] == "sending"
    assert isinstance(answers[1], DomainError)
    assert answers[1].code == "vouchers.stock_empty"
    with unit_of_work(read_only=True) as session:
        claimed = select(VoucherStock.claimed).where(VoucherStock.id == stock_id)
        assert session.scalar(claimed) == 2  # the other writer's coupon and ours
    assert _claims_and_sends(activity_id) == (1, 1)


def test_a_share_taken_by_another_writer_meanwhile_runs_the_batch_again_with_locks(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    activity_id, stock_id = grab(api, tree, operator, max_coupons=10, max_per_org=2)
    members = [make_member(tree.grassroots_a1x) for _ in range(2)]
    for member in members:
        link_wechat(member)
    with unit_of_work() as session:
        infos = [member_info(session, member) for member in members]
    # Another writer's member of the same union takes one of its two (its row is new).
    written = _meanwhile(
        monkeypatch,
        "INSERT INTO vouchers_org_share (activity_id, org_id, claimed) VALUES (:a, :o, 1)",
        {"a": activity_id, "o": tree.grassroots_a1x},
    )
    calls = [
        {"member": info, "activity_id": activity_id, "stock_id": stock_id, "idempotency_key": None}
        for info in infos
    ]
    answers = local_writer.submit(claim_together, {"calls": calls}).result(PATIENCE_S)

    assert written == [2, 1]
    assert isinstance(answers[0], dict)
    assert isinstance(answers[1], DomainError)
    assert answers[1].code == "vouchers.org_limit_reached"
    with unit_of_work(read_only=True) as session:
        share = select(OrgShare.claimed).where(
            OrgShare.activity_id == activity_id, OrgShare.org_id == tree.grassroots_a1x
        )
        assert session.scalar(share) == 2
        claimed = select(VoucherStock.claimed).where(VoucherStock.id == stock_id)
        assert session.scalar(claimed) == 1  # the refused claim's coupon went back
    assert _claims_and_sends(activity_id) == (1, 1)

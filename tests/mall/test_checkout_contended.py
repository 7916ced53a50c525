"""Two writers on PostgreSQL: a batch of checkouts' first try reads stock and budget without
locking them and takes them at its end; when another writer took stock meanwhile, the batch
runs again, locking them first, and its checkouts get the outcomes the stock left allows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gonghui.benefits.models import Budget
from gonghui.db import get_engine, unit_of_work
from gonghui.errors import DomainError
from gonghui.hotwrite.writer import local_writer
from gonghui.mall import checkout as checkout_module
from gonghui.mall.models import Order, Sku
from gonghui.settings import get_settings
from tests.activities.conftest import MemberFactory, member_info
from tests.fixtures import Tree
from tests.mall.conftest import ADDRESS, link_wechat, product, sale

pytestmark = pytest.mark.skipif(
    get_settings().is_sqlite, reason="SQLite has one writer: nothing takes stock meanwhile"
)

PATIENCE_S = 60


def check_out_together(session: Session, *, calls: list[dict[str, Any]]) -> list[Any]:
    """Both checkouts in one batch form call, as one job of the writer."""
    return checkout_module.checkout_many(session, calls)


def test_stock_taken_by_another_writer_meanwhile_runs_the_batch_again_with_locks(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sku = product(api, operator, tree.province, price_cents=5000, stock=2)["skus"][0]["id"]
    sale_id = sale(api, operator, tree.province, percent=20, budget_cents=10_000)
    members = [make_member(tree.district_a1) for _ in range(2)]
    for member in members:
        link_wechat(member)
    with unit_of_work() as session:
        infos = [member_info(session, member) for member in members]

    inserted: list[int] = []
    real_insert = checkout_module._insert

    def insert_while_another_writer_takes(session: Session, orders: list[Any]) -> None:
        # On the first run only: another writer sells the last unit and commits, through a
        # connection of its own that waits at most 2 s for a lock this batch might hold.
        if not inserted:
            with get_engine().connect() as other:
                other.execute(text("SET lock_timeout = '2s'"))
                other.execute(
                    text("UPDATE mall_sku SET stock = stock - 1 WHERE id = :s AND stock >= 1"),
                    {"s": sku},
                )
                other.commit()
        inserted.append(len(orders))
        real_insert(session, orders)

    monkeypatch.setattr(checkout_module, "_insert", insert_while_another_writer_takes)
    calls = [
        {
            "member": info,
            "items": [{"sku_id": sku, "quantity": 1}],
            "activity_id": sale_id,
            "voucher_id": None,
            "address": ADDRESS,
            "idempotency_key": None,
        }
        for info in infos
    ]
    answers = local_writer.submit(check_out_together, {"calls": calls}).result(PATIENCE_S)

    # The first run counted on two units and wrote two orders; one unit was gone at its end.
    # The batch ran again: the first member gets the last unit, the second finds none left.
    assert inserted == [2, 1]
    assert isinstance(answers[0], dict)
    assert answers[0]["subsidy_cents"] == 1000
    assert isinstance(answers[1], DomainError)
    assert answers[1].code == "mall.out_of_stock"
    with unit_of_work(read_only=True) as session:
        assert session.execute(select(Sku.stock, Sku.sold).where(Sku.id == sku)).one() == (0, 1)
        assert session.scalar(select(func.count()).select_from(Order)) == 1
        spent = select(Budget.cents_spent).where(Budget.activity_id == sale_id)
        assert session.scalar(spent) == 1000

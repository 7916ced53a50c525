"""The mall's periodic pass (``mall.sweep``, every ``mall_sweep_interval_s``): payments
and refunds whose notification is late are asked for, unpaid orders past their time are
closed (their stock, subsidy and voucher given back), shipped and received orders move on
with time. Each order's step is its own: one WeChat Pay can't answer waits for the next pass."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import ColumnElement, select

from gonghui import tasks
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.mall import fulfilment, payment, refunds
from gonghui.mall.models import Order, OrderState
from gonghui.settings import get_settings

log = logging.getLogger("gonghui.mall")
BATCH = 100


def _ids(*conditions: ColumnElement[bool]) -> list[int]:
    with unit_of_work(read_only=True) as session:
        return list(
            session.scalars(select(Order.id).where(*conditions).order_by(Order.id).limit(BATCH))
        )


def sweep() -> dict[str, int]:
    """One pass; how many orders each step looked at."""
    settings = get_settings()
    instant = now()
    late = instant - timedelta(seconds=settings.mall_payment_query_after_s)
    done = {"late_payments": 0, "closed": 0, "late_refunds": 0}
    steps = [
        (
            "late_payments",
            _ids(
                Order.state == OrderState.UNPAID,
                Order.prepay_id.is_not(None),
                Order.created_at <= late,
                Order.due_at > instant,
            ),
            payment.check_payment,
        ),
        (
            "closed",
            _ids(Order.state == OrderState.UNPAID, Order.due_at <= instant),
            lambda order_id: payment.close_unpaid(order_id, source="mall.timeout"),
        ),
        (
            "late_refunds",
            _ids(
                Order.state == OrderState.REFUNDING,
                Order.refund_id.is_not(None),
                Order.paid_at <= late,
            ),
            refunds.check_refund,
        ),
    ]
    for name, order_ids, step in steps:
        for order_id in order_ids:
            try:
                step(order_id)
            except DomainError as exc:  # WeChat Pay unavailable: the next pass tries again
                log.warning("mall sweep: order %s: %s", order_id, exc.message)
                continue
            done[name] += 1
    with unit_of_work() as session:
        done["moved_on"] = fulfilment.advance(session)
    return done


@tasks.periodic("mall.sweep", every_s=lambda: get_settings().mall_sweep_interval_s)
def run_sweep() -> None:
    touched = sweep()
    if any(touched.values()):
        log.info("mall sweep", extra={"fields": touched})

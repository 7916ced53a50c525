"""Coupon sends that wait for their paused stock to restart, rather than fail.

A send whose stock is paused, here (an operator paused it: :func:`.stocks.move_stock`) or
at WeChat Pay (it refused the coupon and, asked, says the stock is ``paused``; the stock
here follows), is not retried: its claim becomes ``waiting`` (:func:`wait`) and its task
is done, so nothing runs until the stock restarts. Then every waiting claim of the stock
is ``sending`` again with a new send task (:func:`resume`), in the transaction that
records the restart: the operator's restart, or :func:`check_waiting`, which every
``voucher_waiting_check_s`` asks WeChat Pay how each stock with waiting sends stands (a
stock restarted at WeChat Pay itself, or a restart that raced a send's wait).

The wait is bounded: a claim that has waited ``voucher_send_max_wait_s`` in all (since it
first waited, however often it resumed) is sent one last time (``last``), not waiting
again: WeChat Pay sends the coupon if the stock runs after all (or if an earlier try of
the same out_request_no did), or refuses, and the claim fails and gives its coupon back
as any refused send does. A claim never fails without that last answer, so a coupon
WeChat Pay sent is never given back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.activities.voucher_grab.models import (
    SEND_COUPON,
    ClaimState,
    StockStatus,
    VoucherClaim,
    VoucherStock,
)
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.integrations import wechatpay
from gonghui.settings import get_settings

log = logging.getLogger(__name__)

CHECK_WAITING = "vouchers.check_waiting"


def paused_at_wechatpay(client: wechatpay.WechatPayClient, wechat_stock_id: str) -> bool:
    """Whether WeChat Pay says the stock is paused (after it refused one of its coupons).
    No answer raises :class:`wechatpay.WechatPayUnavailable`: the send is tried again."""
    try:
        found = client.call(
            "GET",
            f"/v3/marketing/favor/stocks/{wechat_stock_id}"
            f"?stock_creator_mchid={client.merchant.mchid}",
        )
    except wechatpay.WechatPayRefused:
        return False
    return found.get("status") == "paused"


def wait(
    session: Session, *, stock_id: int, claim_ids: Sequence[int], paused_at_wechatpay: bool
) -> bool:
    """The claims' sends wait for their stock (paused here, or at WeChat Pay: then paused
    here too), in ``session``'s transaction. False, and nothing written, if the stock
    restarted meanwhile: the caller sends them at once instead."""
    if paused_at_wechatpay:
        mirrored = session.execute(
            update(VoucherStock)
            .where(VoucherStock.id == stock_id, VoucherStock.status == StockStatus.RUNNING)
            .values(status=StockStatus.PAUSED)
        )
        if rowcount(mirrored):
            log.warning("voucher stock %s was paused at WeChat Pay: paused here", stock_id)
    # Shared-locked (PostgreSQL): a restart's update of the stock waits for this wait to
    # commit, and its resume then sees the claims waiting.
    status = session.scalar(
        select(VoucherStock.status).where(VoucherStock.id == stock_id).with_for_update(read=True)
    )
    if status != StockStatus.PAUSED:
        return False
    session.execute(
        update(VoucherClaim)
        .where(VoucherClaim.id.in_(claim_ids), VoucherClaim.state == ClaimState.SENDING)
        .values(
            state=ClaimState.WAITING,
            waiting_since=func.coalesce(VoucherClaim.waiting_since, now()),
        )
        .execution_options(synchronize_session=False)
    )
    return True


def resume(session: Session, *, stock_id: int) -> int:
    """The stock runs again: its waiting claims are ``sending``, each with a send task
    (committed with the caller's restart); returns how many."""
    ids = session.scalars(
        update(VoucherClaim)
        .where(VoucherClaim.stock_id == stock_id, VoucherClaim.state == ClaimState.WAITING)
        .values(state=ClaimState.SENDING)
        .returning(VoucherClaim.id)
        .execution_options(synchronize_session=False)
    ).all()
    tasks.defer_many(session, SEND_COUPON, [{"claim_id": i} for i in sorted(ids)])
    return len(ids)


def _give_up(session: Session, *, stock_id: int) -> int:
    """The stock's claims that waited ``voucher_send_max_wait_s`` in all: sent one last
    time (see the module); returns how many."""
    cutoff = now() - timedelta(seconds=get_settings().voucher_send_max_wait_s)
    ids = session.scalars(
        update(VoucherClaim)
        .where(
            VoucherClaim.stock_id == stock_id,
            VoucherClaim.state == ClaimState.WAITING,
            VoucherClaim.waiting_since <= cutoff,
        )
        .values(state=ClaimState.SENDING)
        .returning(VoucherClaim.id)
        .execution_options(synchronize_session=False)
    ).all()
    tasks.defer_many(session, SEND_COUPON, [{"claim_id": i, "last": True} for i in sorted(ids)])
    return len(ids)


@tasks.periodic(CHECK_WAITING, every_s=lambda: get_settings().voucher_waiting_check_s)
def check_waiting() -> None:
    """Each stock with waiting sends: resumed if WeChat Pay says it runs, else its sends
    that waited too long sent one last time."""
    with unit_of_work(read_only=True) as session:
        stocks = session.execute(
            select(VoucherStock.id, VoucherStock.wechat_stock_id)
            .where(
                VoucherStock.id.in_(
                    select(VoucherClaim.stock_id)
                    .where(VoucherClaim.state == ClaimState.WAITING)
                    .distinct()
                )
            )
            .order_by(VoucherStock.id)
        ).all()
    if not stocks:
        return
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    for stock_id, wechat_stock_id in stocks:
        try:
            found = client.call(
                "GET",
                f"/v3/marketing/favor/stocks/{wechat_stock_id}"
                f"?stock_creator_mchid={client.merchant.mchid}",
            )
            running = found.get("status") == "running"
        except (wechatpay.WechatPayRefused, wechatpay.WechatPayUnavailable) as exc:
            log.warning("voucher stock %s: WeChat Pay did not say how it stands: %s", stock_id, exc)
            running = False
        with unit_of_work() as session:
            if running:
                session.execute(
                    update(VoucherStock)
                    .where(VoucherStock.id == stock_id, VoucherStock.status == StockStatus.PAUSED)
                    .values(status=StockStatus.RUNNING)
                )
                resumed = resume(session, stock_id=stock_id)
                log.info("voucher stock %s runs at WeChat Pay: %d sends resumed", stock_id, resumed)
            else:
                _give_up(session, stock_id=stock_id)

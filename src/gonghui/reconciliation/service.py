"""The daily reconciliation with WeChat Pay (issue 16, item 6).

For a day it compares:

- **coupons**: for every voucher-grab stock open at WeChat Pay, the coupons used (our
  claims marked used by ``COUPON.USE``, against the stock's use flow, 下载批次核销明细) and
  how many were sent (our claims holding a coupon, against the stock's
  ``distributed_coupons``). WeChat Pay's records of a stock are cumulative, so each day's
  report says where the two stand that day;
- **trades**: the mall's payments and refunds recorded on that day (display zone) against
  the day's trade bill (申请交易账单, ``bill_type=ALL``), by ``out_trade_no`` and
  ``out_refund_no``.

Each difference is a row of the day's report: recorded here but unknown there, there but
not here, or two amounts. Nothing is corrected automatically: an operator looks. The
exchanges with WeChat Pay happen outside any transaction; the report is written in one, and
a run again for the same day replaces it. The periodic task makes yesterday's report once
WeChat Pay has its bills (from ``reconciliation_hour`` local time), and tries again every
``reconciliation_check_s`` while the last attempt failed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.activities.voucher_grab.models import ClaimState, VoucherClaim, VoucherStock
from gonghui.cells import safe_row
from gonghui.clock import day_start, display_zone, local_day, now
from gonghui.db import unit_of_work
from gonghui.errors import InvalidInput
from gonghui.integrations import wechatpay
from gonghui.mall.models import Order
from gonghui.reconciliation import compare
from gonghui.reconciliation.compare import Difference
from gonghui.reconciliation.models import (
    ReconciliationDifference,
    ReconciliationReport,
    Source,
)
from gonghui.settings import get_settings

RUN = "reconciliation.run"


@dataclass(frozen=True)
class _StockHere:
    id: int
    wechat_stock_id: str
    used: dict[str, int]  # coupon id -> cents taken off
    sent: int


def _stocks_here() -> list[_StockHere]:
    """Each stock placed at WeChat Pay: its coupons sent here and those used, read in two
    grouped queries (not one per stock, nor every sent coupon's row)."""
    with unit_of_work(read_only=True) as session:
        stocks = session.execute(
            select(VoucherStock.id, VoucherStock.wechat_stock_id, VoucherStock.coupon_amount_cents)
            .where(VoucherStock.wechat_stock_id.is_not(None))
            .order_by(VoucherStock.id)
        ).all()
        sent: dict[int, int] = dict(
            session.execute(
                select(VoucherClaim.stock_id, func.count())
                .where(VoucherClaim.coupon_id.is_not(None))
                .group_by(VoucherClaim.stock_id)
            ).all()
        )
        used: dict[int, list[str]] = {}
        for stock_id, coupon_id in session.execute(
            select(VoucherClaim.stock_id, VoucherClaim.coupon_id).where(
                VoucherClaim.state == ClaimState.USED, VoucherClaim.coupon_id.is_not(None)
            )
        ):
            used.setdefault(stock_id, []).append(str(coupon_id))
    return [
        _StockHere(
            stock_id,
            str(wechat_stock_id),
            dict.fromkeys(used.get(stock_id, []), amount),
            sent=sent.get(stock_id, 0),
        )
        for stock_id, wechat_stock_id, amount in stocks
    ]


def _coupons(client: wechatpay.WechatPayClient) -> tuple[int, list[Difference]]:
    checked, found = 0, []
    for stock in _stocks_here():
        path = f"/v3/marketing/favor/stocks/{stock.wechat_stock_id}"
        there = client.call("GET", f"{path}?stock_creator_mchid={client.merchant.mchid}")
        flow = client.call("GET", f"{path}/use-flow")
        rows = wechatpay.parse_bill(
            client.download(
                str(flow.get("url", "")),
                hash_type=str(flow.get("hash_type", "")),
                hash_value=str(flow.get("hash_value", "")),
            )
        )
        used_there = {
            row.get("优惠id", ""): compare.cents(row.get("优惠金额（元）", "")) or 0 for row in rows
        }
        checked += len(stock.used) + len(used_there)
        found += compare.coupon_stock(
            stock.wechat_stock_id,
            used_here=stock.used,
            used_there=used_there,
            sent_here=stock.sent,
            sent_there=int(there.get("distributed_coupons", 0)),
        )
    return checked, found


def _trades_here(day: date) -> tuple[dict[str, int], dict[str, int]]:
    start, end = day_start(day), day_start(day + timedelta(days=1))
    with unit_of_work(read_only=True) as session:
        paid = session.execute(
            select(Order.out_trade_no, Order.total_cents).where(
                Order.paid_at >= start, Order.paid_at < end
            )
        ).all()
        refunded = session.execute(
            select(Order.out_refund_no, Order.total_cents).where(
                Order.refunded_at >= start, Order.refunded_at < end
            )
        ).all()
    return {str(n): c for n, c in paid}, {str(n): c for n, c in refunded}


def _trade_bill(client: wechatpay.WechatPayClient, day: date) -> list[dict[str, str]]:
    try:
        answer = client.call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL")
    except wechatpay.WechatPayRefused as exc:
        if isinstance(exc.details, dict) and exc.details.get("code") == "NO_STATEMENT_EXIST":
            return []  # no payment and no refund that day
        raise
    return wechatpay.parse_bill(
        client.download(
            str(answer.get("download_url", "")),
            hash_type=str(answer.get("hash_type", "")),
            hash_value=str(answer.get("hash_value", "")),
        )
    )


def _trades(client: wechatpay.WechatPayClient, day: date) -> tuple[int, list[Difference]]:
    paid_here, refunded_here = _trades_here(day)
    paid_there: dict[str, int] = {}
    refunded_there: dict[str, int] = {}
    for row in _trade_bill(client, day):
        if row.get("交易状态") == "SUCCESS":
            paid_there[row.get("商户订单号", "")] = compare.cents(row.get("应结订单金额", "")) or 0
        elif row.get("交易状态") == "REFUND":
            refunded_there[row.get("商户退款单号", "")] = (
                compare.cents(row.get("退款金额", "")) or 0
            )
    found = compare.amounts(Source.TRADES, paid_here, paid_there, what="payment")
    found += compare.amounts(Source.TRADES, refunded_here, refunded_there, what="refund")
    checked = len(paid_here) + len(paid_there) + len(refunded_here) + len(refunded_there)
    return checked, found


def run(day: date) -> int:
    """Compare ``day`` and store its report (replacing an earlier one); the report's id.
    WeChat Pay unreachable or refusing stops the run: the report says why, with no
    differences (an incomplete comparison would list false ones)."""
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    checked, found, error = 0, [], None
    try:
        coupons_checked, coupon_differences = _coupons(client)
        trades_checked, trade_differences = _trades(client, day)
        checked = coupons_checked + trades_checked
        found = coupon_differences + trade_differences
    except (wechatpay.WechatPayUnavailable, wechatpay.WechatPayRefused) as exc:
        error = exc.message[:300]
    with unit_of_work() as session:
        session.execute(
            delete(ReconciliationDifference).where(
                ReconciliationDifference.report_id.in_(
                    select(ReconciliationReport.id).where(ReconciliationReport.day == day)
                )
            )
        )
        session.execute(delete(ReconciliationReport).where(ReconciliationReport.day == day))
        report = ReconciliationReport(
            day=day, ok=error is None, checked=checked, differences=len(found), error=error
        )
        session.add(report)
        session.flush()
        session.add_all(
            ReconciliationDifference(
                report_id=report.id,
                source=d.source,
                kind=d.kind,
                reference=d.reference[:64],
                ours_cents=d.ours_cents,
                theirs_cents=d.theirs_cents,
                note=d.note[:300],
            )
            for d in found
        )
        return report.id


@tasks.task(RUN, max_attempts=3)
def run_task(day: str) -> None:
    run(date.fromisoformat(day))


def request_run(session: Session, *, day: date) -> None:
    """Queue a run for ``day`` (an operator's "check again"); it starts after the commit."""
    if day > local_day():
        raise InvalidInput("reconciliation.future_day", "a day to come has nothing to compare")
    tasks.defer(session, RUN, day=day.isoformat())


@tasks.periodic("reconciliation.daily", every_s=lambda: get_settings().reconciliation_check_s)
def daily() -> None:
    """Yesterday's report, once WeChat Pay's bills are out; again while it failed. A
    deployment with no WeChat Pay merchant has nothing to reconcile."""
    at = now().astimezone(display_zone())
    if at.hour < get_settings().reconciliation_hour or not wechatpay.configured():
        return
    yesterday = local_day() - timedelta(days=1)
    with unit_of_work(read_only=True) as session:
        done = session.scalar(
            select(func.count())
            .select_from(ReconciliationReport)
            .where(ReconciliationReport.day == yesterday, ReconciliationReport.ok)
        )
    if not done:
        run(yesterday)


def reports(session: Session, *, limit: int = 60) -> list[ReconciliationReport]:
    return list(
        session.scalars(
            select(ReconciliationReport).order_by(ReconciliationReport.day.desc()).limit(limit)
        )
    )


def report_of(
    session: Session, *, day: date
) -> tuple[ReconciliationReport | None, list[ReconciliationDifference]]:
    report = session.scalar(select(ReconciliationReport).where(ReconciliationReport.day == day))
    if report is None:
        return None, []
    differences = session.scalars(
        select(ReconciliationDifference)
        .where(ReconciliationDifference.report_id == report.id)
        .order_by(ReconciliationDifference.id)
    )
    return report, list(differences)


COLUMNS = ["source", "kind", "reference", "ours_cents", "theirs_cents", "note"]


def to_xlsx(items: list[ReconciliationDifference]) -> bytes:
    """A report's differences as a workbook, one row each."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("differences")
    sheet.append(COLUMNS)
    for d in items:
        row = [str(d.source), str(d.kind), d.reference, d.ours_cents, d.theirs_cents, d.note]
        sheet.append(safe_row(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()

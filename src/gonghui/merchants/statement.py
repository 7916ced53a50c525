"""A merchant's settlement statement: what the union owes it for the vouchers it took in a
period of calendar days, line by line, as an XLSX workbook."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from gonghui.cells import safe_row
from gonghui.clock import day_start, display_zone, local_day
from gonghui.errors import InvalidInput
from gonghui.merchants.errors import MerchantsError
from gonghui.merchants.models import Merchant
from gonghui.merchants.redeem import RedemptionLine, redemptions

# A statement covers at most this many days (a year and a day: a leap year's February).
MAX_DAYS = 366


@dataclass(frozen=True)
class Labels:
    """The words of the workbook, in the reader's language."""

    title: str
    period: str
    columns: list[str]  # at, voucher code, voucher name, value, order amount, cashier
    total: str


Language = Literal["zh", "en"]

LABELS: dict[Language, Labels] = {
    "zh": Labels(
        title="商户核销结算单",
        period="结算期间",
        columns=["核销时间", "券码", "券名称", "券面额（元）", "订单金额（元）", "收银员"],
        total="合计",
    ),
    "en": Labels(
        title="Merchant settlement statement",
        period="Period",
        columns=["Redeemed at", "Voucher code", "Voucher", "Value (CNY)", "Order (CNY)", "Cashier"],
        total="Total",
    ),
}


def period(first: date | None, last: date | None) -> tuple[date, date]:
    """The days a caller asked for: today when neither end is given, one day when one is."""
    first = first or last or local_day()
    return first, last or first


def period_lines(
    session: Session, *, merchant_id: int, first: date, last: date, newest_first: bool = False
) -> list[RedemptionLine]:
    """The merchant's redemptions on the days ``first`` to ``last`` (display zone), oldest
    first unless ``newest_first``."""
    if last < first or (last - first).days >= MAX_DAYS:
        raise InvalidInput(
            MerchantsError.BAD_PERIOD, f"a period runs forward and spans at most {MAX_DAYS} days"
        )
    lines = redemptions(
        session,
        merchant_id=merchant_id,
        start=day_start(first),
        end=day_start(last + timedelta(days=1)),
    )
    return lines if newest_first else lines[::-1]


def _yuan(cents: int) -> Decimal:
    return Decimal(cents) / 100


def to_xlsx(
    session: Session, *, merchant: Merchant, first: date, last: date, labels: Labels
) -> bytes:
    lines = period_lines(session, merchant_id=merchant.id, first=first, last=last)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(labels.title[:31])
    sheet.append(safe_row([labels.title, merchant.name]))
    sheet.append(safe_row([labels.period, f"{first.isoformat()} – {last.isoformat()}"]))
    sheet.append([])
    sheet.append(labels.columns)
    zone = display_zone()
    for line in lines:
        sheet.append(
            safe_row(
                [
                    line.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                    line.voucher_code,
                    line.voucher_name,
                    _yuan(line.value_cents),
                    _yuan(line.order_cents),
                    line.cashier_name,
                ]
            )
        )
    sheet.append(
        safe_row(
            [
                labels.total,
                len(lines),
                "",
                _yuan(sum(line.value_cents for line in lines)),
                _yuan(sum(line.order_cents for line in lines)),
                "",
            ]
        )
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()

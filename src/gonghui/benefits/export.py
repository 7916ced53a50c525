"""Reconciliation exports of an activity's ledger: CSV and XLSX, one row per ledger entry."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.benefits.models import LedgerEntry, Voucher
from gonghui.cells import safe_row

COLUMNS = ["entry_id", "at", "membership_id", "kind", "action", "amount", "voucher_code", "source"]


def rows(session: Session, *, activity_id: int) -> Iterator[list[object]]:
    result = session.execute(
        select(LedgerEntry, Voucher.code)
        .outerjoin(Voucher, Voucher.id == LedgerEntry.voucher_id)
        .where(LedgerEntry.activity_id == activity_id)
        .order_by(LedgerEntry.id)
        .execution_options(yield_per=1000)
    )
    for entry, code in result:
        yield [
            entry.id,
            entry.at.isoformat(),
            entry.membership_id,
            str(entry.kind),
            str(entry.action),
            entry.amount,
            code or "",
            entry.source,
        ]


def to_csv(session: Session, *, activity_id: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(safe_row(row) for row in rows(session, activity_id=activity_id))
    # UTF-8 with BOM so that Excel opens Chinese text correctly.
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(session: Session, *, activity_id: int) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("ledger")
    sheet.append(COLUMNS)
    for row in rows(session, activity_id=activity_id):
        sheet.append(safe_row(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()

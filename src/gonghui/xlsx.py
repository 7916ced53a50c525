"""Reading an uploaded XLSX workbook's first sheet as rows, in bounded memory and time.

An XLSX file is a ZIP of XML: a few kilobytes can unpack to gigabytes, declare a million
blank rows or a cell in column XFD. So before a row is read the parts' unpacked sizes are
summed against ``GONGHUI_XLSX_MAX_UNPACKED_BYTES`` (Python's ``zipfile`` never inflates a
part beyond the size its directory declares); the sheet is streamed with openpyxl's
read-only reader, ignoring the dimensions the file claims (they would pad every row); and
every row counts against the caller's row cap, blank ones included, as does every row's
width against ``GONGHUI_XLSX_MAX_COLUMNS``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Generator
from typing import Any, BinaryIO

from openpyxl import load_workbook  # type: ignore[import-untyped]

from gonghui.settings import get_settings


class SheetError(ValueError):
    """The workbook cannot be read within the caps; ``code`` says why (``file.*``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _check_unpacked_size(source: BinaryIO) -> None:
    cap = get_settings().xlsx_max_unpacked_bytes
    try:
        with zipfile.ZipFile(source) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SheetError("file.not_xlsx", "not a readable XLSX workbook") from exc
    finally:
        source.seek(0)
    if unpacked > cap:
        raise SheetError(
            "file.too_large_unpacked",
            f"the workbook unpacks to {unpacked} bytes; at most {cap} are accepted",
        )


def sheet_rows(
    source: BinaryIO, *, max_rows: int
) -> Generator[tuple[int, tuple[Any, ...]], None, None]:
    """The first sheet's rows as (row number, cell values), the header row included, blank
    rows as empty tuples. Raises :class:`SheetError` for an unreadable workbook, and after
    ``max_rows`` rows or at a row wider than the column cap."""
    max_columns = get_settings().xlsx_max_columns
    source.seek(0)
    _check_unpacked_size(source)
    try:
        workbook = load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise SheetError("file.not_xlsx", "not a readable XLSX workbook") from exc
    try:
        if not workbook.worksheets:
            raise SheetError("file.empty", "the workbook has no sheet")
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # a claimed A1:XFD1048576 would pad every row
        rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        while True:
            try:
                number, row = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # damaged XML inside the ZIP
                raise SheetError("file.not_xlsx", "not a readable XLSX workbook") from exc
            if number > max_rows:
                raise SheetError(
                    "file.too_many_rows",
                    f"the sheet has more than {max_rows} rows (blank rows count)",
                )
            if len(row) > max_columns:
                raise SheetError(
                    "file.too_many_columns", f"row {number} is wider than {max_columns} columns"
                )
            yield number, row
    finally:
        workbook.close()

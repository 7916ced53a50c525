"""Reading an uploaded XLSX workbook's first sheet as rows, in bounded memory and time.

An XLSX file is a ZIP of XML: a few kilobytes can unpack to gigabytes, declare a million
blank rows or a cell in column XFD. So before openpyxl sees the file, the parts' unpacked
sizes are summed against ``GONGHUI_XLSX_MAX_UNPACKED_BYTES`` (Python's ``zipfile`` never
inflates a part beyond the size its directory declares) and every XML part is streamed once
in constant memory, counting rows by their numbers (blank and skipped rows count) against
the caller's cap and cells against ``GONGHUI_XLSX_MAX_COLUMNS``. Then the first sheet is
read with openpyxl's read-only reader, ignoring the dimensions the file claims (they would
pad every row).
"""

from __future__ import annotations

import zipfile
from collections.abc import Generator
from typing import IO, Any, BinaryIO
from xml.etree import ElementTree

from fastapi.responses import Response
from openpyxl import load_workbook  # type: ignore[import-untyped]

from gonghui.settings import get_settings

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def attachment(content: bytes, filename: str) -> Response:
    """A workbook made for download, as the browser saves it: ``filename`` (ASCII)."""
    return Response(
        content,
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


class SheetError(ValueError):
    """The workbook cannot be read within the caps; ``code`` says why (``file.*``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _column(reference: str) -> int:
    """The column number of a cell reference such as ``XFD7`` (0 when it has none)."""
    number = 0
    for char in reference:
        if not "A" <= char <= "Z":
            break
        number = number * 26 + ord(char) - 64
    return number


def _check_part(part: IO[bytes], *, max_rows: int, max_columns: int) -> None:
    """Count a part's rows (by their numbers: a gap is blank rows) and cells, in constant
    memory: every element is dropped from the tree as soon as it ends."""
    stack: list[ElementTree.Element] = []
    row = column = 0
    for event, element in ElementTree.iterparse(part, events=("start", "end")):
        if event == "end":
            stack.pop()
            if stack:
                stack[-1].remove(element)
            continue
        stack.append(element)
        tag = element.tag.rpartition("}")[2]
        if tag == "row":
            reference = element.get("r")
            row = int(reference) if reference and reference.isdigit() else row + 1
            column = 0
            if row > max_rows:
                raise SheetError(
                    "file.too_many_rows",
                    f"the sheet has more than {max_rows} rows (blank rows count)",
                )
        elif tag == "c":
            column = _column(element.get("r") or "") or column + 1
            if column > max_columns:
                raise SheetError(
                    "file.too_many_columns", f"row {row} is wider than {max_columns} columns"
                )


def _check_archive(source: BinaryIO, *, max_rows: int, max_columns: int) -> None:
    """Refuse a workbook beyond the caps before openpyxl opens it (opening scans every
    sheet, keeping a little of every row)."""
    cap = get_settings().xlsx_max_unpacked_bytes
    try:
        with zipfile.ZipFile(source) as archive:
            parts = archive.infolist()
            unpacked = sum(info.file_size for info in parts)
            if unpacked > cap:
                raise SheetError(
                    "file.too_large_unpacked",
                    f"the workbook unpacks to {unpacked} bytes; at most {cap} are accepted",
                )
            # Every XML part: a sheet may live under any name the workbook points to.
            for info in parts:
                if info.filename.endswith(".xml"):
                    with archive.open(info) as part:
                        _check_part(part, max_rows=max_rows, max_columns=max_columns)
    except (zipfile.BadZipFile, ElementTree.ParseError, OSError, ValueError) as exc:
        if isinstance(exc, SheetError):
            raise
        raise SheetError("file.not_xlsx", "not a readable XLSX workbook") from exc
    finally:
        source.seek(0)


def sheet_rows(
    source: BinaryIO, *, max_rows: int
) -> Generator[tuple[int, tuple[Any, ...]], None, None]:
    """The first sheet's rows as (row number, cell values), the header row included, blank
    rows as empty tuples. Raises :class:`SheetError` for an unreadable workbook, and after
    ``max_rows`` rows or at a row wider than the column cap."""
    max_columns = get_settings().xlsx_max_columns
    source.seek(0)
    _check_archive(source, max_rows=max_rows, max_columns=max_columns)
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
            yield number, row
    finally:
        workbook.close()

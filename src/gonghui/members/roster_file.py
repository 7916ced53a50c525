"""Reading a roster file as a stream of rows: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030 as
Excel in China saves it) or XLSX, in constant memory.

The encoding is guessed once from the first chunk: a UTF-8 BOM means ``utf-8-sig``; else
the chunk is tried as strict UTF-8, and anything that is not UTF-8 is read as GB18030 (a
superset of GBK and GB2312). Undecodable bytes later in the file become U+FFFD, so a
damaged row fails validation instead of aborting the whole import.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from operator import itemgetter
from typing import Any, BinaryIO, NamedTuple

_SNIFF_BYTES = 64 * 1024
_XLSX_MAGIC = b"PK\x03\x04"

# Canonical column -> accepted headers (compared after strip + lower-case, no spaces).
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "name", "full_name", "fullname"),
    "id_number": (
        "身份证号",
        "身份证号码",
        "身份证",
        "公民身份号码",
        "id_number",
        "idnumber",
        "id_no",
        "resident_id",
    ),
    "phone": ("手机号", "手机号码", "手机", "联系电话", "电话", "phone", "mobile"),
    "member_no": ("会员号", "会员编号", "会员证号", "member_no", "member_number", "memberno"),
    "org_code": ("工会编码", "组织编码", "工会代码", "单位编码", "org_code", "orgcode", "org"),
    "join_date": ("入会日期", "入会时间", "join_date", "joindate", "joined_at", "joined"),
}
REQUIRED = ("name", "id_number")
_LOOKUP = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}


class RosterFileError(ValueError):
    """The file as a whole cannot be read (not a table, no usable header)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Cell = str | date | datetime | int | float | None


class RawRow(NamedTuple):
    """One data row: its number as a spreadsheet shows it (header = 1) and its cells in the
    order of :data:`COLUMNS` (a tuple, cheap to send to a worker process)."""

    number: int
    cells: tuple[Cell, ...]


class CountingReader(io.RawIOBase):
    """Wraps a binary stream and counts the bytes read (import progress)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n


def detect_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # final=False: a multi-byte character cut at the chunk's end is not an error.
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _normalise_header(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("\ufeff", "").replace(" ", "").replace("\u3000", "").strip().lower()


@dataclass(frozen=True)
class Layout:
    """Which input column holds each canonical column (None when absent)."""

    positions: dict[str, int]

    @classmethod
    def from_header(cls, header: list[Any]) -> Layout:
        positions: dict[str, int] = {}
        for index, value in enumerate(header):
            column = _LOOKUP.get(_normalise_header(value))
            if column is not None and column not in positions:
                positions[column] = index
        missing = [c for c in REQUIRED if c not in positions]
        if missing:
            raise RosterFileError(
                "file.missing_columns",
                "the first row must name the columns; missing: " + ", ".join(missing),
            )
        return cls(positions)

    def picker(self) -> Callable[[list[Any] | tuple[Any, ...]], tuple[Cell, ...]]:
        """A function from an input row to the canonical cells (absent ones None). Rows are
        padded to one past the widest position, which stands in for absent columns."""
        width = max(self.positions.values()) + 1
        getter = itemgetter(*(self.positions.get(c, width) for c in COLUMNS))
        padding = (None,) * (width + 1)

        def pick(row: list[Any] | tuple[Any, ...]) -> tuple[Cell, ...]:
            cells: tuple[Cell, ...] = getter((*row, *padding[len(row) :]))
            return cells

        return pick


def is_xlsx(head: bytes, filename: str) -> bool:
    return head.startswith(_XLSX_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm"))


class RosterReader:
    """Rows of one seekable roster file, with how far into the file reading has got."""

    def __init__(self, source: BinaryIO, filename: str) -> None:
        self.source = source
        self.filename = filename
        self._counter: CountingReader | None = None
        self.xlsx = False

    @property
    def bytes_read(self) -> int:
        return self._counter.bytes_read if self._counter is not None else 0

    def rows(self) -> Iterator[RawRow]:
        """Data rows; raises :class:`RosterFileError` for an unusable file."""
        head = self.source.read(_SNIFF_BYTES)
        self.source.seek(0)
        if not head:
            raise RosterFileError("file.empty", "the file is empty")
        if is_xlsx(head, self.filename):
            self.xlsx = True
            yield from _iter_xlsx(self.source)
            return
        self._counter = CountingReader(self.source)
        buffered = io.BufferedReader(self._counter, buffer_size=_SNIFF_BYTES)
        yield from _iter_csv(buffered, detect_encoding(head))


def _iter_csv(stream: BinaryIO, encoding: str) -> Iterator[RawRow]:
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            raise RosterFileError("file.empty", "the file is empty")
        pick = Layout.from_header(header).picker()
        for row in reader:
            if not any(row):  # a blank line or only separators (Excel writes ",,,,,")
                continue
            yield RawRow(reader.line_num, pick(row))
    except csv.Error as exc:
        raise RosterFileError(
            "file.not_csv", f"not a readable CSV file (line {reader.line_num})"
        ) from exc


def _iter_xlsx(stream: BinaryIO) -> Iterator[RawRow]:
    import zipfile

    from openpyxl import load_workbook  # type: ignore[import-untyped]

    try:
        workbook = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise RosterFileError("file.not_xlsx", "not a readable XLSX workbook") from exc
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise RosterFileError("file.empty", "the workbook has no sheet")
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise RosterFileError("file.empty", "the sheet is empty")
        pick = Layout.from_header(list(header)).picker()
        for number, row in enumerate(rows, start=2):
            if not any(cell is not None and str(cell).strip() for cell in row):
                continue
            yield RawRow(number, pick(row))
    finally:
        workbook.close()

"""Reading a roster file as a stream of rows: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030 as
Excel in China saves it) or XLSX, in constant memory.

The encoding is guessed once from the first chunk: a UTF-8 BOM means ``utf-8-sig``; else
the chunk is tried as strict UTF-8, and anything that is not UTF-8 is read as GB18030 (a
superset of GBK and GB2312). Undecodable bytes later in the file become U+FFFD, so a
damaged row fails validation instead of aborting the whole import.

A CSV file is handed on as byte chunks that end on record boundaries (:class:`CsvChunk`),
so that worker processes parse it, not the process that reads it. In these encodings a
line break or a quote byte is never part of a multi-byte character, so a chunk can be cut
at the bytes: after the last line break when the chunk has no quote character at all,
else after the last record the csv module itself finds complete.
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

from gonghui.settings import get_settings
from gonghui.xlsx import SheetError, sheet_rows

_SNIFF_BYTES = 64 * 1024
_XLSX_MAGIC = b"PK\x03\x04"
# A record (a line, or lines joined by a quoted line break) longer than this is refused.
_MAX_RECORD_BYTES = 16 * 1024 * 1024

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
    "tags": ("标签", "会员标签", "tags", "tag"),
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


class CsvChunk(NamedTuple):
    """Whole CSV records, as bytes, and how many lines of the file come before them (the
    header included): what a worker process needs to parse them and number the rows."""

    data: bytes
    lines_before: int
    encoding: str
    layout: Layout


# What the reader hands on: CSV chunks, or rows already read (XLSX).
Piece = CsvChunk | list[RawRow]


def _line_count(data: bytes) -> int:
    """Lines as the csv module counts them: ended by LF, CRLF or a lone CR."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _line_end(block: bytes, eof: bool) -> int:
    """The offset just past the last line break that certainly ends a line (a CR at the
    very end may be half of a CRLF); 0 when there is none."""
    if eof:
        return len(block)
    lf = block.rfind(b"\n")
    if lf >= 0:
        return lf + 1
    return block.rfind(b"\r", 0, len(block) - 1) + 1


def _records(data: bytes, encoding: str) -> Iterator[tuple[list[str], int]]:
    """The csv records of ``data`` (whole lines), each with the offset just past it."""
    offset = 0

    def lines() -> Iterator[str]:
        nonlocal offset
        for line in data.splitlines(keepends=True):  # LF, CRLF, CR: as newline=""
            offset += len(line)
            yield line.decode(encoding, "replace")

    # The reader takes a line only when the record it has so far is not complete.
    for record in csv.reader(lines()):
        yield record, offset


def _record_end(block: bytes, encoding: str, eof: bool) -> int:
    """The offset just past the last complete record of ``block`` (0 when none is)."""
    cut = _line_end(block, eof)
    if cut == 0 or block.find(b'"', 0, cut) < 0:
        return cut  # no quotes: every line break ends a record
    last = previous = 0
    try:
        for _record, end in _records(block[:cut], encoding):
            previous, last = last, end
    except csv.Error:
        return cut  # the worker meets the same error, at the same line, and reports it
    # Before the end of the file the last record may go on in the next block.
    return last if eof else previous


def parse_chunk(chunk: CsvChunk) -> Iterator[tuple[int, tuple[Cell, ...]]]:
    """The rows of a chunk (row number, cells); raises :class:`RosterFileError` at a line
    the csv module cannot read, after the rows before it."""
    text = chunk.data.decode(chunk.encoding, "replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    pick = chunk.layout.picker()
    base = chunk.lines_before
    try:
        for row in reader:
            if not any(row):  # a blank line or only separators (Excel writes ",,,,,")
                continue
            yield base + reader.line_num, pick(row)
    except csv.Error as exc:
        raise RosterFileError(
            "file.not_csv", f"not a readable CSV file (line {base + reader.line_num})"
        ) from exc


class RosterReader:
    """A seekable roster file as pieces of work, with how far into the file reading has
    got."""

    def __init__(self, source: BinaryIO, filename: str) -> None:
        self.source = source
        self.filename = filename
        self.bytes_read = 0
        self.xlsx = False

    def pieces(self, *, rows: int, chunk_bytes: int) -> Iterator[tuple[Piece, int]]:
        """CSV chunks of about ``chunk_bytes`` (XLSX: lists of ``rows`` rows), each with
        how many bytes of the file were read by then; raises :class:`RosterFileError` for
        an unusable file."""
        head = self.source.read(_SNIFF_BYTES)
        self.source.seek(0)
        if not head:
            raise RosterFileError("file.empty", "the file is empty")
        if is_xlsx(head, self.filename):
            self.xlsx = True
            yield from _batched(self, _iter_xlsx(self.source), rows)
            return
        yield from self._csv_chunks(detect_encoding(head), chunk_bytes)

    def _fill(self, pending: bytes, size: int) -> tuple[bytes, bool]:
        data = self.source.read(size)
        self.bytes_read += len(data)
        return pending + data, not data

    def _csv_chunks(self, encoding: str, chunk_bytes: int) -> Iterator[tuple[CsvChunk, int]]:
        done = 0
        if encoding == "utf-8-sig":  # the BOM starts the file and nothing else
            done = self.bytes_read = len(self.source.read(len(codecs.BOM_UTF8)))
            encoding = "utf-8"
        pending, eof = self._fill(b"", chunk_bytes)
        # The header: the first record, complete once a second one starts.
        while True:
            try:
                records = _records(pending[: _line_end(pending, eof)], encoding)
                first = next(records, None)
                complete = eof or len(pending) >= _MAX_RECORD_BYTES or next(records, None)
            except csv.Error as exc:
                raise RosterFileError("file.not_csv", "not a readable CSV file (line 1)") from exc
            if complete:
                break
            pending, eof = self._fill(pending, chunk_bytes)
        if first is None:
            raise RosterFileError("file.empty", "the file is empty")
        header, end = first
        layout = Layout.from_header(header)
        lines = _line_count(pending[:end])
        done += end
        pending = pending[end:]
        while pending or not eof:
            if not eof and len(pending) < chunk_bytes:
                pending, eof = self._fill(pending, chunk_bytes)
            end = _record_end(pending, encoding, eof)
            if end == 0:
                if eof:
                    break
                if len(pending) >= _MAX_RECORD_BYTES:
                    raise RosterFileError(
                        "file.not_csv", f"not a readable CSV file (line {lines + 1})"
                    )
                pending, eof = self._fill(pending, chunk_bytes)
                continue
            data, pending = pending[:end], pending[end:]
            done += end
            yield CsvChunk(data, lines, encoding, layout), done
            lines += _line_count(data)


def _batched(
    reader: RosterReader, rows: Iterator[RawRow], size: int
) -> Iterator[tuple[list[RawRow], int]]:
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch, reader.bytes_read
            batch = []
    if batch:
        yield batch, reader.bytes_read


def _iter_xlsx(stream: BinaryIO) -> Iterator[RawRow]:
    rows = sheet_rows(stream, max_rows=get_settings().roster_xlsx_max_rows)
    try:
        _, header = next(rows, (0, None))
        if header is None:
            raise RosterFileError("file.empty", "the sheet is empty")
        pick = Layout.from_header(list(header)).picker()
        for number, row in rows:
            if not any(cell is not None and str(cell).strip() for cell in row):
                continue  # numbered and counted against the cap all the same
            yield RawRow(number, pick(row))
    except SheetError as exc:
        raise RosterFileError(exc.code, str(exc)) from exc
    finally:
        rows.close()

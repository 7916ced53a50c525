"""Validating and sealing roster rows: the CPU-heavy half of an import.

Pure functions over plain data (no session), so that a worker process can run them: a
large import hands chunks of the file to a process pool and gets back rows ready to
insert (blind indexes and ciphertext, never the plain values) plus per-field errors.

Prepared rows are already in the database driver's form, so that the process writing
them does as little per row as it can: the binary values are ``bytearray`` (the sqlite3
module binds those directly; ``bytes`` go through its adapter lookup first, which cost
more than the insert's own work), and on SQLite dates are ISO text. A worker returns its
batch pickled with protocol 5, which writes a ``bytearray`` as one opcode (the pool's
default protocol 4 rebuilds each one through a function call), and the importing process
keeps it so until it writes it: pickled, a prepared row takes a third of the memory.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Final

from gonghui.errors import InvalidInput
from gonghui.members.idnumber import IdNumberError, validate
from gonghui.members.roster_file import COLUMNS, Cell, CsvChunk, Piece, RosterFileError, parse_chunk
from gonghui.members.tags import parse_tags
from gonghui.pii import BulkSealer, PiiField, narrow_key

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d")
_NAME_MAX = 64
_MEMBER_NO_MAX = 64
_INDEX = {column: i for i, column in enumerate(COLUMNS)}
_NAME, _ID, _PHONE_COL = _INDEX["name"], _INDEX["id_number"], _INDEX["phone"]
_MEMBER_NO, _ORG, _JOIN = _INDEX["member_no"], _INDEX["org_code"], _INDEX["join_date"]
_TAGS = _INDEX["tags"]


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    code: str
    reason: str


# In the upsert's column order (see roster_write): org id, id hash, id ciphertext, name
# hash, name ciphertext, phone hash, phone ciphertext, phone key, member number, join date
# (driver form), tags (a JSON array as text; None: none given, kept as they are); then
# the row number.
SealedRow = tuple[
    int,
    bytearray,
    bytearray,
    bytearray,
    bytearray,
    bytearray | None,
    bytearray | None,
    int | None,
    str | None,
    date | str | None,
    str | None,
    int,
]
ROW_NUMBER: Final = 11
TAGS: Final = 10
ID_HASH = itemgetter(1)


@dataclass
class PreparedBatch:
    rows: list[SealedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    failed_rows: int = 0
    # A file-level error (code, message) met after these rows: the import stops there.
    file_error: tuple[str, str] | None = None

    @property
    def size(self) -> int:
        """Rows of the file read."""
        return len(self.rows) + self.failed_rows

    def unpack(self) -> PreparedBatch:
        return self


@dataclass(frozen=True)
class PackedBatch:
    """A :class:`PreparedBatch` pickled (protocol 5), with what grouping batches into
    transactions needs to know."""

    size: int
    file_error: tuple[str, str] | None
    data: bytes

    @classmethod
    def pack(cls, batch: PreparedBatch) -> PackedBatch:
        return cls(batch.size, batch.file_error, pickle.dumps(batch, protocol=5))

    def unpack(self) -> PreparedBatch:
        batch: PreparedBatch = pickle.loads(self.data)  # noqa: S301 (our own worker's output)
        return batch


def _text(cell: Cell) -> str:
    if type(cell) is str:
        return cell.strip()
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    return str(cell).strip()


def _join_date(cell: Cell, today: date) -> date | None:
    if cell is None or cell == "":
        return None
    if isinstance(cell, datetime):
        value = cell.date()
    elif isinstance(cell, date):
        value = cell
    else:
        text = _text(cell)
        if not text:
            return None
        try:
            value = date.fromisoformat(text)  # YYYY-MM-DD and YYYYMMDD, fast
        except ValueError:
            value = _parse_date(text)
    if not date(1900, 1, 1) <= value <= today:
        raise ValueError("the date is out of range")
    return value


def _parse_date(text: str) -> date:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a calendar day)
        except ValueError:
            continue
    raise ValueError("use YYYY-MM-DD")


def normalise_phone(text: str) -> str:
    text = text.replace(" ", "").replace("-", "")
    return text[3:] if text.startswith("+86") else text


class RowPreparer:
    """Validates rows against the importer's orgs and seals the good ones."""

    def __init__(
        self,
        *,
        sealer: BulkSealer,
        org_ids_by_code: dict[str, int],
        default_org_id: int,
        today: date,
        dates_as_text: bool = False,
        in_key_order: bool = False,
    ) -> None:
        self.sealer = sealer
        self.org_ids_by_code = org_ids_by_code
        self.default_org_id = default_org_id
        self.today = today
        self.dates_as_text = dates_as_text
        # Sorted by ID-number hash (stable), each batch is a run that the writer's sort of
        # a whole transaction merges instead of sorting again (see roster_write).
        self.in_key_order = in_key_order

    def prepare(self, piece: Piece) -> PreparedBatch:
        """A CSV chunk (parsed here) or rows already read."""
        batch = PreparedBatch()
        try:
            self._prepare_into(batch, parse_chunk(piece) if isinstance(piece, CsvChunk) else piece)
        except RosterFileError as exc:  # the chunk's csv error, after its good rows
            batch.file_error = (exc.code, str(exc))
        if self.in_key_order:
            batch.rows.sort(key=ID_HASH)
        return batch

    def _prepare_into(
        self, batch: PreparedBatch, rows: Iterable[tuple[int, tuple[Cell, ...]]]
    ) -> None:
        sealer = self.sealer
        index, seal = sealer.index_encoded, sealer.seal_encoded
        id_field, name_field, phone_field = PiiField.ID_NUMBER, PiiField.NAME, PiiField.PHONE
        as_text = self.dates_as_text
        append = batch.rows.append
        for number, cells in rows:
            checked = self._check(number, cells)
            if isinstance(checked, list):
                batch.errors.extend(checked)
                batch.failed_rows += 1
                continue
            _, name, id_number, phone, member_no, org_id, joined, tags = checked
            id_data, name_data = id_number.encode(), name.encode()
            phone_hash = phone_enc = phone_key = None
            if phone:
                phone_data = phone.encode()
                digest = index(phone_field, phone_data)
                phone_hash = bytearray(digest)
                phone_enc = seal(phone_field, phone_data)
                phone_key = narrow_key(digest)
            append(
                (
                    org_id,
                    bytearray(index(id_field, id_data)),
                    seal(id_field, id_data),
                    bytearray(index(name_field, name_data)),
                    seal(name_field, name_data),
                    phone_hash,
                    phone_enc,
                    phone_key,
                    member_no,
                    joined.isoformat() if as_text and joined is not None else joined,
                    json.dumps(tags, ensure_ascii=False) if tags else None,
                    number,
                )
            )

    def _check(
        self, n: int, cells: tuple[Cell, ...]
    ) -> list[RowError] | tuple[int, str, str, str, str | None, int, date | None, list[str]]:
        errors: list[RowError] = []
        name = _text(cells[_NAME])
        if not name:
            errors.append(RowError(n, "name", "name.required", "the name is empty"))
        elif len(name) > _NAME_MAX or not name.isprintable() or "\ufffd" in name:
            errors.append(RowError(n, "name", "name.invalid", "not a valid name"))
        id_number = ""
        try:
            id_number = validate(_text(cells[_ID]), today=self.today)
        except IdNumberError as exc:
            errors.append(RowError(n, "id_number", exc.code, str(exc)))
        phone = normalise_phone(_text(cells[_PHONE_COL]))
        if phone and not _PHONE.match(phone):
            errors.append(
                RowError(n, "phone", "phone.format", "must be an 11-digit mainland mobile number")
            )
        member_no = _text(cells[_MEMBER_NO]) or None
        if member_no is not None and len(member_no) > _MEMBER_NO_MAX:
            errors.append(RowError(n, "member_no", "member_no.invalid", "at most 64 characters"))
        code = _text(cells[_ORG])
        org_id = self.org_ids_by_code.get(code) if code else self.default_org_id
        if org_id is None:
            # Unknown codes and codes outside the importer's subtree read the same.
            errors.append(RowError(n, "org_code", "org.not_found", "org not found"))
        joined = None
        try:
            joined = _join_date(cells[_JOIN], self.today)
        except ValueError as exc:
            errors.append(RowError(n, "join_date", "join_date.format", str(exc)))
        tags: list[str] = []
        raw_tags = _text(cells[_TAGS])
        if raw_tags:
            try:
                tags = parse_tags(raw_tags)
            except InvalidInput as exc:
                errors.append(RowError(n, "tags", "tags.invalid", exc.message))
        if errors:
            return errors
        assert org_id is not None
        return n, name, id_number, phone, member_no, org_id, joined, tags


# Worker-process side of the pool: one preparer per process, built by the initializer.
_worker: RowPreparer | None = None


def init_worker(
    hmac_key: bytes,
    encryption_key: bytes,
    org_ids_by_code: dict[str, int],
    default_org_id: int,
    today: date,
    dates_as_text: bool,
    in_key_order: bool,
) -> None:
    global _worker
    _worker = RowPreparer(
        sealer=BulkSealer(hmac_key, encryption_key),
        org_ids_by_code=org_ids_by_code,
        default_org_id=default_org_id,
        today=today,
        dates_as_text=dates_as_text,
        in_key_order=in_key_order,
    )


def prepare_in_worker(piece: Piece) -> PackedBatch:
    assert _worker is not None, "init_worker was not run"
    return PackedBatch.pack(_worker.prepare(piece))

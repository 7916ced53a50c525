"""Validating and sealing roster rows: the CPU-heavy half of an import.

Pure functions over plain data (no session), so that a worker process can run them: a
large import hands batches of raw rows to a process pool and gets back rows ready to
insert (blind indexes and ciphertext, never the plain values) plus per-field errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from gonghui.members.idnumber import IdNumberError, validate
from gonghui.members.roster_file import COLUMNS, Cell, RawRow
from gonghui.pii import BulkSealer, PiiField, narrow_key

_PHONE = re.compile(r"^1[3-9]\d{9}$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d")
_NAME_MAX = 64
_MEMBER_NO_MAX = 64
_INDEX = {column: i for i, column in enumerate(COLUMNS)}
_NAME, _ID, _PHONE_COL = _INDEX["name"], _INDEX["id_number"], _INDEX["phone"]
_MEMBER_NO, _ORG, _JOIN = _INDEX["member_no"], _INDEX["org_code"], _INDEX["join_date"]


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    code: str
    reason: str


# (row number, id hash, id ciphertext, name hash, name ciphertext, phone hash, phone
# ciphertext, member number, org id, join date, phone key)
SealedRow = tuple[
    int,
    bytes,
    bytes,
    bytes,
    bytes,
    bytes | None,
    bytes | None,
    str | None,
    int,
    date | None,
    int | None,
]


@dataclass
class PreparedBatch:
    rows: list[SealedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    failed_rows: int = 0


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
    ) -> None:
        self.sealer = sealer
        self.org_ids_by_code = org_ids_by_code
        self.default_org_id = default_org_id
        self.today = today

    def prepare(self, rows: list[RawRow]) -> PreparedBatch:
        batch = PreparedBatch()
        seal, index = self.sealer.seal, self.sealer.blind_index
        for raw in rows:
            errors = self._check(raw)
            if isinstance(errors, list):
                batch.errors.extend(errors)
                batch.failed_rows += 1
                continue
            number, name, id_number, phone, member_no, org_id, joined = errors
            phone_hash = index(PiiField.PHONE, phone) if phone else None
            batch.rows.append(
                (
                    number,
                    index(PiiField.ID_NUMBER, id_number),
                    seal(PiiField.ID_NUMBER, id_number),
                    index(PiiField.NAME, name),
                    seal(PiiField.NAME, name),
                    phone_hash,
                    seal(PiiField.PHONE, phone) if phone else None,
                    member_no,
                    org_id,
                    joined,
                    narrow_key(phone_hash) if phone_hash else None,
                )
            )
        return batch

    def _check(
        self, raw: RawRow
    ) -> list[RowError] | tuple[int, str, str, str, str | None, int, date | None]:
        cells, n = raw.cells, raw.number
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
        if errors:
            return errors
        assert org_id is not None
        return n, name, id_number, phone, member_no, org_id, joined


# Worker-process side of the pool: one preparer per process, built by the initializer.
_worker: RowPreparer | None = None


def init_worker(
    hmac_key: bytes,
    encryption_key: bytes,
    org_ids_by_code: dict[str, int],
    default_org_id: int,
    today: date,
) -> None:
    global _worker
    _worker = RowPreparer(
        sealer=BulkSealer(hmac_key, encryption_key),
        org_ids_by_code=org_ids_by_code,
        default_org_id=default_org_id,
        today=today,
    )


def prepare_in_worker(rows: list[RawRow]) -> PreparedBatch:
    assert _worker is not None, "init_worker was not run"
    return _worker.prepare(rows)

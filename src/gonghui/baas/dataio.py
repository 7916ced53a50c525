"""Table data import and export, CSV and JSON, for the app's developers.

Export streams every row in id order (keyset batches). Import checks every row like the
records API does and inserts all of them or none; errors name the row and field. Both
report progress through an optional callback (the CLI draws a progress bar with it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from enum import StrEnum
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import xlsx
from gonghui.audit import service as audit
from gonghui.baas.apps import staff_caller
from gonghui.baas.errors import BaasError
from gonghui.baas.records import write
from gonghui.baas.records.rows import to_record
from gonghui.baas.tables import info as infos
from gonghui.baas.tables.info import SYSTEM_FIELDS, TableInfo
from gonghui.baas.tables.types import FieldType
from gonghui.cells import safe_text, unescape_text
from gonghui.errors import InvalidInput, field_error
from gonghui.tenancy import Actor

Progress = Callable[[int], None]
_BATCH = 500
MAX_IMPORT_ROWS = 100_000


class DataFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


def _csv_cell(field_type: FieldType, value: Any) -> str:
    if value is None:
        return ""
    if field_type in (FieldType.JSON, FieldType.ARRAY):
        return json.dumps(value, ensure_ascii=False)
    if field_type is FieldType.BOOLEAN:
        return "true" if value else "false"
    if field_type is FieldType.STRING:
        return safe_text(str(value))
    return str(value)


def value_from_text(ftype: FieldType, text: str, where: str) -> Any:
    """A field's value as written in a CSV cell or a form's text box ("" is none)."""
    if text == "":
        return None
    try:
        match ftype:
            case FieldType.INTEGER | FieldType.FILE | FieldType.REFERENCE:
                return int(text)
            case FieldType.NUMBER:
                return float(text)
            case FieldType.BOOLEAN:
                lowered = text.strip().lower()
                if lowered in ("true", "1", "yes"):
                    return True
                if lowered in ("false", "0", "no"):
                    return False
                raise ValueError(text)
            case FieldType.JSON | FieldType.ARRAY:
                return json.loads(text)
            case FieldType.STRING:
                return unescape_text(text)  # what our own export escaped
            case _:
                return text
    except ValueError:
        raise InvalidInput(
            BaasError.INVALID_RECORD,
            f"{where}: not a {ftype}",
            [field_error(where, BaasError.INVALID_RECORD, f"not a {ftype}")],
        ) from None


def export_rows(
    session: Session,
    *,
    actor: Actor,
    app_id: int,
    table: str,
    fmt: DataFormat,
    progress: Progress | None = None,
) -> Iterator[str]:
    """The table's rows as CSV or a JSON array, produced batch by batch."""
    caller = staff_caller(session, actor=actor, app_id=app_id)
    info = infos.load(session, app_id=caller.app_id, name=table)
    audit.record(
        session,
        actor=actor,
        action="baas.table.export",
        org_id=caller.org_id,
        subject_type="baas_table",
        subject_id=info.id,
        details={"format": str(fmt)},
    )
    return _generate(session, info, fmt, progress)


def _generate(
    session: Session, info: TableInfo, fmt: DataFormat, progress: Progress | None
) -> Iterator[str]:
    t = info.sql
    header = [*SYSTEM_FIELDS, *(f.name for f in info.fields)]
    types = {f.name: f.type for f in info.fields}
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt is DataFormat.CSV:
        writer.writerow(header)
    else:
        buffer.write("[")
    last_id, done = 0, 0
    while True:
        rows = session.execute(
            select(t).where(t.c.id > last_id).order_by(t.c.id).limit(_BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            record = to_record(info, row)
            if fmt is DataFormat.CSV:
                writer.writerow(
                    [_csv_cell(types.get(k, FieldType.STRING), record[k]) for k in header]
                )
            else:
                buffer.write(("," if done else "") + json.dumps(record, ensure_ascii=False))
            done += 1
        last_id = rows[-1]._mapping["id"]
        if progress is not None:
            progress(done)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if fmt is DataFormat.JSON:
        buffer.write("]")
    yield buffer.getvalue()


def import_rows(
    session: Session,
    *,
    actor: Actor,
    app_id: int,
    table: str,
    fmt: DataFormat,
    data: str,
    progress: Progress | None = None,
) -> int:
    """Insert every row of ``data`` (system columns such as ``id`` are ignored); all or none."""
    with infos.reading_before_writes(session) as reader:
        caller = staff_caller(reader, actor=actor, app_id=app_id)
        info = infos.load(reader, app_id=caller.app_id, name=table)
    items = _parse(info, fmt, data)
    if len(items) > MAX_IMPORT_ROWS:
        raise InvalidInput(BaasError.INVALID_RECORD, f"at most {MAX_IMPORT_ROWS} rows at once")
    # Every row is checked before the first write statement (and the write lock).
    rows = write.prepare_rows(info, items, caller=caller, numbered=True)
    done = 0
    for start in range(0, len(rows), write.MAX_BULK):
        batch = rows[start : start + write.MAX_BULK]
        try:
            write.insert_rows(session, caller=caller, info=info, rows=batch)
        except InvalidInput as exc:
            _shift_rows(exc, start, single=len(batch) == 1)
            raise
        done += len(batch)
        if progress is not None:
            progress(done)
    audit.record(
        session,
        actor=actor,
        action="baas.table.import",
        org_id=caller.org_id,
        subject_type="baas_table",
        subject_id=info.id,
        details={"format": str(fmt), "rows": done},
    )
    return done


def _shift_rows(exc: InvalidInput, start: int, *, single: bool) -> None:
    """Name rows by their position in the whole file, not in the batch."""
    if not isinstance(exc.details, list):
        return
    for d in exc.details:
        head, _, rest = str(d.get("field", "")).partition(".")
        if single:
            d["field"] = f"{start}.{d['field']}"
        elif head.isdigit():
            d["field"] = f"{int(head) + start}.{rest}"


def _parse(info: TableInfo, fmt: DataFormat, data: str) -> list[dict[str, Any]]:
    if fmt is DataFormat.JSON:
        try:
            parsed = json.loads(data)
        except ValueError:
            raise InvalidInput(BaasError.INVALID_RECORD, "the data is not JSON") from None
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            raise InvalidInput(BaasError.INVALID_RECORD, "a JSON array of objects expected")
        return [{k: v for k, v in r.items() if k not in SYSTEM_FIELDS} for r in parsed]
    reader = csv.DictReader(io.StringIO(data))
    items = []
    for i, row in enumerate(reader):
        item: dict[str, Any] = {}
        for key, text in row.items():
            if key is None or key in SYSTEM_FIELDS:
                continue
            field = info.by_name.get(key)
            if field is None:
                raise InvalidInput(
                    BaasError.INVALID_RECORD,
                    f"unknown column {key}",
                    [field_error(key, BaasError.INVALID_RECORD, "unknown column")],
                )
            item[key] = value_from_text(field.type, text or "", f"{i}.{key}")
        items.append(item)
    return items


def _sheet_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a spreadsheet keeps every number as a float
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def xlsx_as_csv(source: BinaryIO) -> str:
    """The first sheet of a workbook (a header row of field names, then rows) as the CSV
    :func:`import_rows` reads, so that a workbook is imported by the same rules."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    width: int | None = None
    try:
        for _number, row in xlsx.sheet_rows(source, max_rows=MAX_IMPORT_ROWS + 1):
            cells = [_sheet_cell(cell) for cell in row]
            if not any(cells):
                continue
            if width is None:  # the header row: its last named column ends every row
                width = max(i for i, c in enumerate(cells) if c) + 1
            writer.writerow((cells + [""] * width)[:width])
    except xlsx.SheetError as exc:
        raise InvalidInput(exc.code, str(exc)) from None
    return buffer.getvalue()

"""Records as JSON: stored rows to dicts, JSON input to validated column values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.orm import Session

from gonghui.baas.errors import BaasError
from gonghui.baas.files import files_exist
from gonghui.baas.permissions import Action, Caller, row_filter
from gonghui.baas.tables import info as infos
from gonghui.baas.tables.info import SYSTEM_FIELDS, FieldInfo, TableInfo
from gonghui.baas.tables.types import FieldType, bad, check_rules, coerce_scalar, to_json
from gonghui.errors import InvalidInput, field_error


def to_record(
    info: TableInfo,
    row: Row[Any] | Mapping[str, Any],
    fields: list[FieldInfo] | None = None,
) -> dict[str, Any]:
    """A stored row (a Core row, or a :class:`~gonghui.db.Prepared` row) as JSON."""
    mapping = row._mapping if isinstance(row, Row) else row
    record: dict[str, Any] = {
        "id": mapping["id"],
        "created_by": mapping["created_by"],
        "created_at": to_json(FieldType.DATETIME, mapping["created_at"]),
        "updated_at": to_json(FieldType.DATETIME, mapping["updated_at"]),
    }
    for f in fields if fields is not None else info.fields:
        record[f.name] = to_json(f.type, mapping[f.column])
    return record


def stored_value(field: FieldInfo, value: Any) -> Any:
    """The column value for JSON ``value`` of ``field``: type, then rules."""
    if value is None:
        if field.required:
            raise InvalidInput(
                BaasError.INVALID_RECORD,
                f"{field.name}: is required",
                [field_error(field.name, BaasError.FIELD_REQUIRED, "is required")],
            )
        return None
    stored = coerce_scalar(field.type, value, field.name)
    check_rules(field.rules, stored, field.name)
    return stored


def check_known(info: TableInfo, data: dict[str, Any], where: str = "") -> None:
    unknown = [k for k in data if k not in info.by_name]
    if unknown:
        details = [
            field_error(
                f"{where}{k}",
                BaasError.INVALID_RECORD,
                "is set by the server" if k in SYSTEM_FIELDS else "unknown field",
            )
            for k in unknown[:20]
        ]
        raise InvalidInput(BaasError.INVALID_RECORD, f"unknown fields: {unknown[:20]}", details)


def new_row(info: TableInfo, data: dict[str, Any]) -> dict[str, Any]:
    """Column values for a new record: defaults applied, every field checked."""
    if not isinstance(data, dict):
        raise InvalidInput(BaasError.INVALID_RECORD, "a record is a JSON object")
    check_known(info, data)
    values: dict[str, Any] = {}
    for f in info.fields:
        value = data.get(f.name, f.default)
        values[f.column] = stored_value(f, value)
    return values


def read_filter(session: Session, caller: Caller, info: TableInfo) -> ColumnElement[bool]:
    return readable(caller, info)


def readable(caller: Caller, info: TableInfo) -> ColumnElement[bool]:
    """The rows of ``info`` that ``caller`` may read (no database work)."""
    return row_filter(caller, info.permissions, Action.READ, info.sql, info.id)


def ref_resolver(session: Session, caller: Caller) -> Any:
    def resolve(field: FieldInfo) -> tuple[TableInfo, ColumnElement[bool]]:
        assert field.ref_table_id is not None
        target = infos.load_by_id(session, app_id=caller.app_id, table_id=field.ref_table_id)
        return target, read_filter(session, caller, target)

    return resolve


def check_references(
    session: Session, caller: Caller, info: TableInfo, rows: list[dict[str, Any]]
) -> None:
    """Every reference names an existing record of its table (the caller need not read it)."""
    for f in info.fields:
        if f.type is FieldType.FILE:
            ids = {r[f.column] for r in rows if r.get(f.column) is not None}
            if not ids:
                continue
            missing = sorted(ids - files_exist(session, app_id=caller.app_id, file_ids=ids))
            if missing:
                raise bad(f.name, f"no file {missing[0]} in this app")
            continue
        if f.type is not FieldType.REFERENCE or f.ref_table_id is None:
            continue
        wanted = {r[f.column] for r in rows if r.get(f.column) is not None}
        if not wanted:
            continue
        target = infos.load_by_id(session, app_id=caller.app_id, table_id=f.ref_table_id)
        found = set(session.scalars(select(target.sql.c.id).where(target.sql.c.id.in_(wanted))))
        missing = sorted(wanted - found)
        if missing:
            raise bad(f.name, f"no record {missing[0]} in table {target.name}")

"""Tables and their fields: create, change and drop, migrating the real SQL table in place.

Columns are always nullable at the SQL level ("required" is a rule the records code
enforces), unique and indexed are separate indexes, and a field's column name never
changes on rename. So adding, renaming and dropping a field, and adding or dropping an
index, are plain ALTER/CREATE INDEX statements on both SQLite (3.35+ drops columns) and
PostgreSQL. A type change copies every value, converted, into a new column and drops the
old one. Dropping a field or a table destroys data and needs ``confirm=True``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Column, Index, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.baas import permissions as perms
from gonghui.baas.apps import get_app
from gonghui.baas.errors import BaasError
from gonghui.baas.models import DataTable, Field, RecordAcl
from gonghui.baas.schemas import NAME_PATTERN, FieldChange, FieldSpec
from gonghui.baas.tables import info as infos
from gonghui.baas.tables.info import RESERVED_NAMES, TableInfo, sql_table_name
from gonghui.baas.tables.types import (
    NUMERIC,
    ORDERED,
    RULE_KEYS,
    SAFE_CHANGES,
    TEXTUAL,
    FieldType,
    UnsupportedPattern,
    bad,
    check_rules,
    coerce_scalar,
    column_type,
    compile_pattern,
    convert,
)
from gonghui.errors import Conflict, InvalidInput, NotFound, field_error
from gonghui.tenancy import Actor

_COPY_BATCH = 1000


def _ops(session: Session) -> Operations:
    return Operations(MigrationContext.configure(session.connection()))


def _index_name(sql_name: str, column: str, unique: bool) -> str:
    return f"{'uq' if unique else 'ix'}_{sql_name}_{column}"


_NAME = re.compile(NAME_PATTERN)


def _check_name(name: str) -> None:
    """A table or field name, whichever way it arrives (the API, a template import): it
    becomes part of SQL identifiers, so the one rule holds for every path."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise bad(
            "name",
            f"{name!r}: lower-case letters, digits and _, starting with a letter, at most 63",
            BaasError.BAD_NAME,
        )
    if name in RESERVED_NAMES:
        raise bad("name", f"{name!r} is reserved for the system", BaasError.BAD_NAME)


def _validate_rules(ftype: FieldType, rules: dict[str, Any], field: str) -> dict[str, Any]:
    unknown = set(rules) - RULE_KEYS
    if unknown:
        raise bad(f"{field}.rules", f"unknown rules {sorted(unknown)}", BaasError.BAD_FIELD)
    for key in ("min", "max"):
        if key in rules:
            if ftype not in NUMERIC:
                raise bad(f"{field}.rules", f"{key} applies to numbers", BaasError.BAD_FIELD)
            value = rules[key]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise bad(f"{field}.rules", f"{key} must be a number", BaasError.BAD_FIELD)
    for key in ("min_length", "max_length"):
        if key in rules:
            if ftype not in TEXTUAL and ftype is not FieldType.ARRAY:
                raise bad(f"{field}.rules", f"{key} applies to text", BaasError.BAD_FIELD)
            value = rules[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad(f"{field}.rules", f"{key} must be a count", BaasError.BAD_FIELD)
    if "pattern" in rules:
        pattern = rules["pattern"]
        if ftype not in TEXTUAL or not isinstance(pattern, str):
            raise bad(
                f"{field}.rules", "pattern: a regular expression on text", BaasError.BAD_FIELD
            )
        try:
            compile_pattern(pattern)
        except UnsupportedPattern as exc:
            raise bad(
                f"{field}.rules",
                f"pattern: not a supported regular expression (RE2 syntax, no backreferences"
                f" or lookaround): {exc}",
                BaasError.BAD_FIELD,
            ) from None
    if "enum" in rules:
        values = rules["enum"]
        if not isinstance(values, list) or not values or ftype not in ORDERED:
            raise bad(f"{field}.rules", "enum: a non-empty list of values", BaasError.BAD_FIELD)
        rules = {**rules, "enum": [coerce_scalar(ftype, v, f"{field}.rules.enum") for v in values]}
    return rules


def _validate_default(ftype: FieldType, rules: dict[str, Any], default: Any, field: str) -> Any:
    if default is None:
        return None
    if ftype in (FieldType.REFERENCE, FieldType.FILE):
        raise bad(f"{field}.default", "references and files have no default", BaasError.BAD_FIELD)
    stored = coerce_scalar(ftype, default, f"{field}.default")
    check_rules(rules, stored, f"{field}.default")
    return default  # kept as JSON


def _check_index_flags(ftype: FieldType, unique: bool, indexed: bool, field: str) -> None:
    if (unique or indexed) and ftype not in ORDERED:
        raise bad(field, f"a {ftype} field cannot be indexed or unique", BaasError.BAD_FIELD)


def _table_row(session: Session, *, actor: Actor, app_id: int, name: str) -> DataTable:
    app = get_app(session, actor=actor, app_id=app_id)
    table = session.scalar(
        select(DataTable).where(DataTable.app_id == app.id, DataTable.name == name)
    )
    if table is None:
        raise infos.not_found(name)
    return table


def _changed(session: Session, table: DataTable, actor: Actor, action: str, details: Any) -> None:
    table.version += 1
    audit.record(
        session,
        actor=actor,
        action=f"baas.table.{action}",
        org_id=table.org_id,
        subject_type="baas_table",
        subject_id=table.id,
        details=details,
    )
    infos.changed(session, app_id=table.app_id, table_id=table.id)


def _resolve_ref(session: Session, app_id: int, spec: FieldSpec) -> int | None:
    if spec.type is not FieldType.REFERENCE:
        if spec.ref is not None:
            raise bad(f"{spec.name}.ref", "only reference fields name a table", BaasError.BAD_FIELD)
        return None
    if spec.ref is None:
        raise bad(f"{spec.name}.ref", "name the referenced table", BaasError.BAD_FIELD)
    ref_id = session.scalar(
        select(DataTable.id).where(DataTable.app_id == app_id, DataTable.name == spec.ref)
    )
    if ref_id is None:
        raise bad(f"{spec.name}.ref", f"no table {spec.ref} in this app", BaasError.BAD_FIELD)
    return ref_id


def _new_field(session: Session, table: DataTable, spec: FieldSpec, position: int) -> Field:
    _check_name(spec.name)
    _check_index_flags(spec.type, spec.unique, spec.indexed, spec.name)
    rules = _validate_rules(spec.type, spec.rules, spec.name)
    default = _validate_default(spec.type, rules, spec.default, spec.name)
    field = Field(
        table_id=table.id,
        name=spec.name,
        type=spec.type.value,
        column="",
        required=spec.required,
        unique=spec.unique,
        indexed=spec.indexed,
        default=default,
        rules=rules,
        ref_table_id=_resolve_ref(session, table.app_id, spec),
        position=position,
    )
    session.add(field)
    session.flush()
    field.column = f"f_{field.id}"
    return field


def _create_indexes(
    session: Session, info: TableInfo, *, name: str, column: str, unique: bool, indexed: bool
) -> None:
    col = info.sql.c[column]
    try:
        if unique:
            Index(_index_name(info.sql.name, column, True), col, unique=True).create(
                session.connection()
            )
        if indexed:
            Index(_index_name(info.sql.name, column, False), col).create(session.connection())
    except IntegrityError as exc:
        raise Conflict(
            BaasError.UNIQUE_VIOLATION,
            f"{name}: existing rows hold duplicate values",
            [{"field": name, "code": BaasError.UNIQUE_VIOLATION, "message": "duplicates"}],
        ) from exc


def _create_field_indexes(session: Session, info: TableInfo, field: Field) -> None:
    _create_indexes(
        session,
        info,
        name=field.name,
        column=field.column,
        unique=field.unique,
        indexed=field.indexed,
    )


def _drop_index(session: Session, sql_name: str, column: str, unique: bool) -> None:
    _ops(session).drop_index(_index_name(sql_name, column, unique), table_name=sql_name)


def create_table(
    session: Session,
    *,
    actor: Actor,
    app_id: int,
    name: str,
    fields: list[FieldSpec],
    permissions: dict[str, Any],
) -> TableInfo:
    app = get_app(session, actor=actor, app_id=app_id)
    _check_name(name)
    if session.scalar(
        select(DataTable.id).where(DataTable.app_id == app.id, DataTable.name == name)
    ):
        raise Conflict(BaasError.TABLE_NAME_TAKEN, f"table {name} already exists in this app")
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise bad("fields", "field names repeat", BaasError.FIELD_NAME_TAKEN)
    table = DataTable(
        app_id=app.id, org_id=app.org_id, name=name, permissions=perms.validate(permissions)
    )
    session.add(table)
    session.flush()
    rows = [_new_field(session, table, spec, i) for i, spec in enumerate(fields)]
    session.flush()
    info = infos.describe(session, table)
    info.sql.create(session.connection())
    for row in rows:
        _create_field_indexes(session, info, row)
    _changed(session, table, actor, "create", {"name": name, "fields": names})
    return infos.describe(session, table)


def describe_table(session: Session, *, actor: Actor, app_id: int, name: str) -> TableInfo:
    return infos.describe(session, _table_row(session, actor=actor, app_id=app_id, name=name))


def list_tables(session: Session, *, actor: Actor, app_id: int) -> list[TableInfo]:
    app = get_app(session, actor=actor, app_id=app_id)
    rows = session.scalars(
        select(DataTable).where(DataTable.app_id == app.id).order_by(DataTable.id)
    )
    return [infos.describe(session, t) for t in rows]


def set_permissions(
    session: Session, *, actor: Actor, app_id: int, name: str, permissions: dict[str, Any]
) -> TableInfo:
    table = _table_row(session, actor=actor, app_id=app_id, name=name)
    table.permissions = perms.validate(permissions)
    _changed(session, table, actor, "permissions", table.permissions)
    return infos.describe(session, table)


@dataclass(frozen=True)
class Loss:
    """What a destructive change would take: the table's records, and how many of them
    hold a value in the field concerned (dropped, or converted to another type)."""

    records: int
    values: int | None = None


def preview_loss(
    session: Session, *, actor: Actor, app_id: int, name: str, field_name: str | None = None
) -> Loss:
    """What dropping the table (no ``field_name``), or dropping or retyping one of its
    fields, would touch; nothing is changed."""
    table = _table_row(session, actor=actor, app_id=app_id, name=name)
    info = infos.describe(session, table)
    records = _row_count(session, info)
    if field_name is None:
        return Loss(records)
    field = _field_row(session, table, field_name)
    column = info.sql.c[field.column]
    values = session.scalar(select(func.count()).select_from(info.sql).where(column.is_not(None)))
    return Loss(records, int(values or 0))


def _require_confirm(confirm: bool, what: str) -> None:
    if not confirm:
        raise Conflict(
            BaasError.CONFIRM_REQUIRED,
            f"{what} destroys data; repeat the request with confirm=true",
        )


def drop_table(session: Session, *, actor: Actor, app_id: int, name: str, confirm: bool) -> None:
    table = _table_row(session, actor=actor, app_id=app_id, name=name)
    _require_confirm(confirm, f"dropping table {name}")
    referencing = session.scalar(
        select(Field.name).where(Field.ref_table_id == table.id, Field.table_id != table.id)
    )
    if referencing is not None:
        raise Conflict(BaasError.BAD_FIELD, f"field {referencing} of another table references it")
    info = infos.describe(session, table)
    _changed(session, table, actor, "drop", {"name": name})
    info.sql.drop(session.connection())
    session.execute(delete(RecordAcl).where(RecordAcl.table_id == table.id))
    session.execute(delete(Field).where(Field.table_id == table.id))
    session.delete(table)


def _field_row(session: Session, table: DataTable, name: str) -> Field:
    field = session.scalar(select(Field).where(Field.table_id == table.id, Field.name == name))
    if field is None:
        raise NotFound(BaasError.FIELD_NOT_FOUND, f"field {name} not found")
    return field


def _row_count(session: Session, info: TableInfo) -> int:
    return int(session.scalar(select(func.count()).select_from(info.sql)) or 0)


def add_field(
    session: Session, *, actor: Actor, app_id: int, name: str, spec: FieldSpec
) -> TableInfo:
    table = _table_row(session, actor=actor, app_id=app_id, name=name)
    if session.scalar(select(Field.id).where(Field.table_id == table.id, Field.name == spec.name)):
        raise Conflict(BaasError.FIELD_NAME_TAKEN, f"field {spec.name} already exists")
    before = infos.describe(session, table)
    last = session.scalar(select(func.max(Field.position)).where(Field.table_id == table.id))
    field = _new_field(session, table, spec, 0 if last is None else last + 1)
    if field.required and field.default is None and _row_count(session, before) > 0:
        raise Conflict(
            BaasError.BAD_FIELD,
            f"{spec.name}: a required field on a table with rows needs a default",
        )
    column = Column(field.column, column_type(spec.type), nullable=True)
    _ops(session).add_column(before.sql.name, column)
    after = infos.describe(session, table)
    if field.default is not None:
        stored = coerce_scalar(spec.type, field.default, spec.name)
        session.execute(
            update(after.sql).values(
                {field.column: bindparam("d", stored, type_=after.sql.c[field.column].type)}
            )
        )
    _create_field_indexes(session, after, field)
    _changed(session, table, actor, "add_field", spec.model_dump(mode="json"))
    return infos.describe(session, table)


def change_field(
    session: Session,
    *,
    actor: Actor,
    app_id: int,
    name: str,
    field_name: str,
    change: FieldChange,
) -> TableInfo:
    """Rename, change the type (where safe), toggle required/unique/indexed, set rules and
    default; each in place, keeping every row's value."""
    table = _table_row(session, actor=actor, app_id=app_id, name=name)
    field = _field_row(session, table, field_name)
    info = infos.describe(session, table)
    sql_name = info.sql.name
    given = change.model_fields_set
    details: dict[str, Any] = {"field": field_name}
    old_type = FieldType(field.type)
    new_type = change.type or old_type
    if new_type is not old_type and new_type not in SAFE_CHANGES.get(old_type, frozenset()):
        raise Conflict(
            BaasError.BAD_TYPE_CHANGE,
            f"{field.name}: {old_type} cannot safely become {new_type}",
            [field_error(field.name, BaasError.BAD_TYPE_CHANGE, f"{old_type} -> {new_type}")],
        )
    if change.name is not None and change.name != field.name:
        _check_name(change.name)
        if session.scalar(
            select(Field.id).where(Field.table_id == table.id, Field.name == change.name)
        ):
            raise Conflict(BaasError.FIELD_NAME_TAKEN, f"field {change.name} already exists")
        details["rename"] = change.name
        field.name = change.name
    unique = field.unique if change.unique is None else change.unique
    indexed = field.indexed if change.indexed is None else change.indexed
    _check_index_flags(new_type, unique, indexed, field.name)
    rules = _validate_rules(
        new_type, field.rules if change.rules is None else change.rules, field.name
    )
    default = field.default if "default" not in given else change.default
    if new_type is not old_type and "default" not in given and default is not None:
        default = convert(old_type, new_type, coerce_scalar(old_type, default, field.name))
        default = default if not hasattr(default, "isoformat") else default.isoformat()
    default = _validate_default(new_type, rules, default, field.name)

    # Indexes go first: SQLite refuses to drop an indexed column.
    for flag, was, now_ in ((True, field.unique, unique), (False, field.indexed, indexed)):
        if was and (not now_ or new_type is not old_type):
            _drop_index(session, sql_name, field.column, flag)
    if new_type is not old_type:
        _migrate_column(session, info, field, old_type, new_type)
        details["type"] = {"from": old_type.value, "to": new_type.value}
    if change.required and not field.required:
        nulls = session.scalar(
            select(func.count()).select_from(info.sql).where(info.sql.c[field.column].is_(None))
        )
        if nulls:
            raise Conflict(BaasError.BAD_FIELD, f"{field.name}: {nulls} rows have no value yet")
    if change.required is not None:
        field.required = change.required
    was_unique, was_indexed = field.unique, field.indexed
    field.unique, field.indexed, field.rules, field.default = unique, indexed, rules, default
    session.flush()
    after = infos.describe(session, table)
    retyped = new_type is not old_type
    _create_indexes(
        session,
        after,
        name=field.name,
        column=field.column,
        unique=unique and (retyped or not was_unique),
        indexed=indexed and (retyped or not was_indexed),
    )
    details.update(
        {k: change.model_dump(mode="json")[k] for k in given if k not in ("name", "type")}
    )
    _changed(session, table, actor, "change_field", details)
    return infos.describe(session, table)


def _migrate_column(
    session: Session, info: TableInfo, field: Field, old: FieldType, new: FieldType
) -> None:
    """Copy every value, converted, into a new column, then drop the old one."""
    old_column = field.column
    new_column = f"f_{field.id}_{info.version + 1}"
    ops = _ops(session)
    ops.add_column(info.sql.name, Column(new_column, column_type(new), nullable=True))
    field.type = new.value
    field.column = new_column
    session.flush()
    target = infos.build_sql_table(
        info.app_id, info.id, [(f.column, f.type) for f in info.fields] + [(new_column, new)]
    )
    source = info.sql
    last_id = 0
    while True:
        rows = session.execute(
            select(source.c.id, source.c[old_column])
            .where(source.c.id > last_id, source.c[old_column].is_not(None))
            .order_by(source.c.id)
            .limit(_COPY_BATCH)
        ).all()
        if not rows:
            break
        session.execute(
            update(target)
            .where(target.c.id == bindparam("rid"))
            .values({new_column: bindparam("v")}),
            [{"rid": r[0], "v": convert(old, new, r[1])} for r in rows],
        )
        last_id = rows[-1][0]
    ops.drop_column(info.sql.name, old_column)


def drop_field(
    session: Session, *, actor: Actor, app_id: int, name: str, field_name: str, confirm: bool
) -> TableInfo:
    table = _table_row(session, actor=actor, app_id=app_id, name=name)
    field = _field_row(session, table, field_name)
    _require_confirm(confirm, f"dropping field {field_name}")
    sql_name = sql_table_name(table.app_id, table.id)
    if field.unique:
        _drop_index(session, sql_name, field.column, True)
    if field.indexed:
        _drop_index(session, sql_name, field.column, False)
    _ops(session).drop_column(sql_name, field.column)
    session.delete(field)
    session.flush()
    _changed(session, table, actor, "drop_field", {"field": field_name})
    return infos.describe(session, table)


def ensure_no_unknown(info: TableInfo, names: list[str]) -> None:
    for n in names:
        if n not in info.by_name:
            raise InvalidInput(BaasError.FIELD_NOT_FOUND, f"unknown field {n}")

"""Reading records: get by id, filtered and sorted lists with offset or cursor paging,
counts, expansion of references, and aggregation."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, false, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement as Col
from sqlalchemy.sql.elements import True_

from gonghui.baas.errors import BaasError
from gonghui.baas.permissions import Caller
from gonghui.baas.records import plans
from gonghui.baas.records.rows import read_filter, readable, ref_resolver, to_record
from gonghui.baas.records.where import SYSTEM_TYPES, Compiler
from gonghui.baas.records.write import record_not_found
from gonghui.baas.tables import info as infos
from gonghui.baas.tables.info import FieldInfo, TableInfo
from gonghui.baas.tables.types import NUMERIC, ORDERED, TEXTUAL, FieldType, coerce_scalar, to_json
from gonghui.db import DriverUnit
from gonghui.errors import InvalidInput, field_error

MAX_LIMIT = 1000
MAX_OFFSET = 100_000
AGGREGATES = ("count", "sum", "avg", "min", "max")


def parse_where(where: str | None) -> Any:
    """A list query's ``where``, the JSON filter as sent in the URL (None: no filter)."""
    if not where:
        return None
    try:
        return json.loads(where)
    except ValueError:
        raise InvalidInput(
            BaasError.INVALID_QUERY,
            "where is not JSON",
            [field_error("where", BaasError.INVALID_QUERY, "not JSON")],
        ) from None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    count: int | None


@dataclass(frozen=True)
class SortKey:
    name: str
    ftype: FieldType
    column: Col[Any]
    descending: bool


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        BaasError.INVALID_QUERY,
        f"{field}: {message}",
        [field_error(field, BaasError.INVALID_QUERY, message)],
    )


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _where(session: Session, caller: Caller, info: TableInfo, where: Any) -> ColumnElement[bool]:
    compiler = Compiler(dialect=_dialect(session), resolve_ref=ref_resolver(session, caller))
    return _both(read_filter(session, caller, info), compiler.compile(info, where))


def _both(a: ColumnElement[bool], b: ColumnElement[bool]) -> ColumnElement[bool]:
    # Every list and get builds this; skipping an always-true side (the server key's
    # filter, an absent where) spares building and cache-keying one more clause.
    if isinstance(a, True_):
        return b
    if isinstance(b, True_):
        return a
    return and_(a, b)


def _column(info: TableInfo, name: Any, what: str) -> tuple[FieldType, Col[Any]]:
    if not isinstance(name, str):
        raise _bad(what, "names a field")
    if name in SYSTEM_TYPES:
        return SYSTEM_TYPES[name], info.sql.c[name]
    f = info.by_name.get(name)
    if f is None:
        raise _bad(what, f"unknown field {name[:60]}")
    return f.type, info.sql.c[f.column]


def _sort_keys(dialect: str, info: TableInfo, sort: list[str]) -> list[SortKey]:
    keys: list[SortKey] = []
    for spec in sort:
        if not isinstance(spec, str) or not spec:
            raise _bad("sort", "items are field names, '-' first for descending")
        name = spec.lstrip("-")
        ftype, column = _column(info, name, "sort")
        if ftype not in ORDERED:
            raise _bad("sort", f"{name} cannot be sorted")
        if ftype in TEXTUAL and dialect == "postgresql":
            column = column.collate("C")
        keys.append(SortKey(name, ftype, column, spec.startswith("-")))
    if not any(k.name == "id" for k in keys):
        keys.append(SortKey("id", FieldType.INTEGER, info.sql.c.id, False))
    return keys


def _order(keys: list[SortKey]) -> list[Any]:
    # Missing values sort first ascending and last descending, on both backends.
    return [
        k.column.desc().nulls_last() if k.descending else k.column.asc().nulls_first() for k in keys
    ]


def _encode_cursor(keys: list[SortKey], record: dict[str, Any]) -> str:
    payload = [[k.name, k.descending] for k in keys], [record[k.name] for k in keys]
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def _after_cursor(keys: list[SortKey], cursor: str) -> ColumnElement[bool]:
    try:
        spec, values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, TypeError):
        raise _bad("cursor", "not a cursor this query produced") from None
    if spec != [[k.name, k.descending] for k in keys] or len(values) != len(keys):
        raise _bad("cursor", "belongs to a different sort")
    decoded = [
        None if v is None else coerce_scalar(k.ftype, v, "cursor")
        for k, v in zip(keys, values, strict=True)
    ]
    # Keyset condition: rows strictly after the cursor's position in the sort order.
    options = []
    for i, (key, value) in enumerate(zip(keys, decoded, strict=True)):
        equal = [
            keys[j].column.is_(None)
            if decoded[j] is None
            else keys[j].column == _bind(keys[j].column, decoded[j])
            for j in range(i)
        ]
        if key.descending:
            after = (
                false()
                if value is None
                else or_(key.column < _bind(key.column, value), key.column.is_(None))
            )
        else:
            after = (
                key.column.is_not(None) if value is None else key.column > _bind(key.column, value)
            )
        options.append(and_(true(), *equal, after))
    return or_(*options)


def _bind(column: Col[Any], value: Any) -> Any:
    # Explicitly typed: SQLAlchemy refuses `column < True` with a bare Python bool.
    return bindparam(None, value, type_=column.type)


def _selected(info: TableInfo, fields: list[str] | None) -> list[FieldInfo]:
    if fields is None:
        return list(info.fields)
    chosen = []
    for name in fields:
        f = info.by_name.get(name) if isinstance(name, str) else None
        if f is None:
            if name in SYSTEM_TYPES:
                continue
            raise _bad("fields", f"unknown field {str(name)[:60]}")
        chosen.append(f)
    return chosen


def _expand(
    session: Session,
    caller: Caller,
    info: TableInfo,
    records: list[dict[str, Any]],
    expand: list[str],
) -> None:
    """Replace reference ids by the referenced records the caller may read (else null)."""
    for name in expand:
        f = info.by_name.get(name) if isinstance(name, str) else None
        if f is None or f.type is not FieldType.REFERENCE or f.ref_table_id is None:
            raise _bad("expand", f"{str(name)[:60]} is not a reference field")
        ids = {r[name] for r in records if r.get(name) is not None}
        if not ids:
            continue
        target = infos.load_by_id(session, app_id=caller.app_id, table_id=f.ref_table_id)
        rows = session.execute(
            select(target.sql).where(target.sql.c.id.in_(ids), read_filter(session, caller, target))
        ).all()
        found = {row._mapping["id"]: to_record(target, row) for row in rows}
        for r in records:
            if name in r and r[name] is not None:
                r[name] = found.get(r[name])


def get_record(
    session: Session,
    *,
    caller: Caller,
    table: str,
    record_id: int,
    fields: list[str] | None = None,
    expand: list[str] | None = None,
) -> dict[str, Any]:
    info = infos.load(session, app_id=caller.app_id, name=table)
    record = record_by_id(
        DriverUnit.of(session), caller=caller, info=info, record_id=record_id, fields=fields
    )
    if expand:
        _expand(session, caller, info, [record], expand)
    return record


def record_by_id(
    unit: DriverUnit,
    *,
    caller: Caller,
    info: TableInfo,
    record_id: int,
    fields: list[str] | None = None,
) -> dict[str, Any]:
    """One record of ``info`` as ``caller`` may read it (references not expanded)."""
    row = plans.by_id(caller, info, readable(caller, info)).first(unit, {"record_id": record_id})
    if row is None:
        raise record_not_found(record_id)
    return to_record(info, row, _selected(info, fields))


def list_records(
    session: Session,
    *,
    caller: Caller,
    table: str,
    where: Any = None,
    sort: list[str] | None = None,
    fields: list[str] | None = None,
    expand: list[str] | None = None,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
    count: bool = False,
) -> Page:
    info = infos.load(session, app_id=caller.app_id, name=table)
    planned = find_plan(
        dialect=_dialect(session),
        caller=caller,
        info=info,
        where=where,
        sort=sort,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    if planned is not None:
        page = planned_page(
            DriverUnit.of(session),
            info=info,
            planned=planned,
            fields=fields,
            limit=limit,
            offset=offset,
            count=count,
        )
        if expand:
            _expand(session, caller, info, page.items, expand)
        return page
    t = info.sql
    sort = list(sort or [])
    condition = _where(session, caller, info, where)
    keys = _sort_keys(_dialect(session), info, sort)
    selected = _selected(info, fields)
    stmt = select(t).where(condition)
    if cursor is not None:
        stmt = stmt.where(_after_cursor(keys, cursor))
    stmt = stmt.order_by(*_order(keys)).offset(offset).limit(limit + 1)
    rows = session.execute(stmt).all()
    items, next_cursor = _items(info, [row._mapping for row in rows], keys, selected, fields, limit)
    if expand:
        _expand(session, caller, info, items, expand)
    total = None
    if count:
        counting = select(func.count()).select_from(t).where(condition)
        total = int(session.scalar(counting) or 0)
    return Page(items=items, next_cursor=next_cursor, count=total)


Planned = tuple[plans.Plan, list[Any]]


def find_plan(
    *,
    dialect: str,
    caller: Caller,
    info: TableInfo,
    where: Any,
    sort: list[str] | None,
    limit: int,
    offset: int,
    cursor: str | None,
) -> Planned | None:
    """The page's bounds checked, then the shared statement for this list query and the
    request's values for it, or None when its statement is built per request (a cursor
    page, a condition :mod:`plans` does not share). No database work."""
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", f"between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise _bad("offset", f"between 0 and {MAX_OFFSET}")
    if cursor is not None and offset:
        raise _bad("cursor", "use either a cursor or an offset")
    if cursor is not None:
        return None
    sort = list(sort or [])
    return plans.find(
        dialect=dialect,
        caller=caller,
        info=info,
        where=where,
        sort=sort,
        read_filter=readable(caller, info),
        build_keys=lambda: _sort_keys(dialect, info, sort),
        order=_order,
    )


def planned_page(
    unit: DriverUnit,
    *,
    info: TableInfo,
    planned: Planned,
    fields: list[str] | None,
    limit: int,
    offset: int,
    count: bool,
) -> Page:
    """The page of a :func:`find_plan` query (references not expanded)."""
    plan, leaves = planned
    params = plan.params(leaves, limit=limit + 1, offset=offset)
    selected = _selected(info, fields)
    rows = plan.page.rows(unit, params)
    items, next_cursor = _items(info, rows, list(plan.keys), selected, fields, limit)
    # The plan's COUNT carries the same named parameters: ``params`` binds them here too.
    total = int(plan.count.scalar(unit, params) or 0) if count else None
    return Page(items=items, next_cursor=next_cursor, count=total)


def _items(
    info: TableInfo,
    rows: Sequence[Mapping[Any, Any]],
    keys: list[SortKey],
    selected: list[FieldInfo],
    fields: list[str] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    more = len(rows) > limit
    items = [to_record(info, row) for row in rows[:limit]]
    next_cursor = _encode_cursor(keys, items[-1]) if more and items else None
    if fields is not None:
        keep = {"id", "created_by", "created_at", "updated_at"} | {f.name for f in selected}
        items = [{k: v for k, v in r.items() if k in keep} for r in items]
    return items, next_cursor


def aggregate(
    session: Session,
    *,
    caller: Caller,
    table: str,
    where: Any = None,
    group_by: list[str] | None = None,
    aggregates: list[dict[str, Any]] | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Rows of ``{<group fields>..., <op>_<field>: value}``; ``count`` counts records."""
    info = infos.load(session, app_id=caller.app_id, name=table)
    groups = []
    for name in group_by or []:
        ftype, column = _column(info, name, "group_by")
        if ftype not in ORDERED:
            raise _bad("group_by", f"{name} cannot be grouped")
        groups.append((name, ftype, column))
    outputs: list[tuple[str, FieldType | None, Any]] = []
    for i, spec in enumerate(aggregates or [{"op": "count"}]):
        if not isinstance(spec, dict) or spec.get("op") not in AGGREGATES:
            raise _bad(f"aggregates.{i}", f"op is one of {', '.join(AGGREGATES)}")
        op = spec["op"]
        if op == "count" and spec.get("field") is None:
            outputs.append(("count", FieldType.INTEGER, func.count()))
            continue
        ftype, column = _column(info, spec.get("field"), f"aggregates.{i}.field")
        if op in ("sum", "avg") and ftype not in NUMERIC:
            raise _bad(f"aggregates.{i}", f"{op} applies to numbers")
        if ftype not in ORDERED or (op != "count" and ftype is FieldType.BOOLEAN):
            # PostgreSQL has no min/max over booleans; JSON has no order at all.
            raise _bad(f"aggregates.{i}", f"cannot {op} this field")
        label = f"{op}_{spec['field']}"
        kind: FieldType | None = FieldType.NUMBER if op in ("avg", "sum") else ftype
        if op == "count":
            kind = FieldType.INTEGER
        outputs.append((label, kind, getattr(func, op)(column)))
    if not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", f"between 1 and {MAX_LIMIT}")
    condition = _where(session, caller, info, where)
    columns = [c for _, _, c in groups] + [expr for _, _, expr in outputs]
    stmt = select(*columns).select_from(info.sql).where(condition)
    if groups:
        stmt = stmt.group_by(*(c for _, _, c in groups)).order_by(
            *(c.asc().nulls_first() for _, _, c in groups)
        )
    result = []
    for row in session.execute(stmt.limit(limit)).all():
        item: dict[str, Any] = {}
        for (name, ftype, _), value in zip(groups, row[: len(groups)], strict=True):
            item[name] = to_json(ftype, value)
        for (label, kind, _), value in zip(outputs, row[len(groups) :], strict=True):
            if value is not None and kind is FieldType.NUMBER:
                value = float(value)
            item[label] = to_json(kind, value) if kind is not None else value
        result.append(item)
    return result

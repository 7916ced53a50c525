"""Creating, updating (with atomic operators) and deleting records."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gonghui import hotwrite
from gonghui.baas.errors import BaasError
from gonghui.baas.models import RecordAcl
from gonghui.baas.permissions import Action, Caller, may_create, row_filter
from gonghui.baas.records.rows import (
    check_known,
    check_references,
    new_row,
    stored_value,
    to_record,
)
from gonghui.baas.tables import info as infos
from gonghui.baas.tables.info import TableInfo
from gonghui.baas.tables.types import (
    NUMERIC,
    FieldType,
    bad,
    check_rules,
    coerce_scalar,
    to_json,
)
from gonghui.baas.triggers import service as triggers
from gonghui.baas.triggers.models import TriggerEvent
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    field_error,
)

MAX_BULK = 1000
UPDATE_OPS = ("set", "unset", "increment", "append", "add_unique", "remove")


def record_not_found(record_id: Any) -> NotFound:
    return NotFound(BaasError.RECORD_NOT_FOUND, f"record {record_id} not found")


def _unique_conflict(info: TableInfo, exc: IntegrityError) -> Conflict:
    message = str(exc.orig)
    for f in info.fields:
        if f.unique and re.search(rf"\b{re.escape(f.column)}\b", message):
            return Conflict(
                BaasError.UNIQUE_VIOLATION,
                f"{f.name}: this value is already used",
                [field_error(f.name, BaasError.UNIQUE_VIOLATION, "already used")],
            )
    return Conflict(BaasError.UNIQUE_VIOLATION, "a unique value is already used")


def _table(session: Session | None, caller: Caller, table: str) -> TableInfo:
    """The table's description, read before the write begins (``session``: see
    :func:`infos.reading_before_writes`)."""
    # The hot path (a description this process holds) opens no read for it.
    hit = infos.cached(app_id=caller.app_id, name=table)
    if hit is not None:
        return hit
    with infos.reading_before_writes(session) as reader:
        return infos.load(reader, app_id=caller.app_id, name=table)


async def create_record(*, caller: Caller, table: str, item: dict[str, Any]) -> dict[str, Any]:
    """One record, committed before this returns: checked here (no lock held), written by
    the hot writer (:mod:`gonghui.hotwrite`, :func:`insert_one`).

    Under a burst of creates the writer commits many in one transaction; each write
    transaction of its own made the creates queue for SQLite's one writer a commit at a
    time (in `make bench W=records`, 0.27 of the ping on SQLite)."""
    info = infos.cached(app_id=caller.app_id, name=table)
    if info is None:  # read on a worker thread, off the event loop
        info = await run_in_threadpool(_table, None, caller, table)
    if not may_create(caller, info.permissions):
        raise PermissionDenied(BaasError.FORBIDDEN, f"you may not add records to {table}")
    row = prepare_rows(info, [item], caller=caller, numbered=False)[0]
    return await hotwrite.run_async(
        insert_one, caller=caller, table=table, version=info.version, row=row
    )


def insert_many(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Batch form of :func:`insert_one`: the rows one caller sends to one table, one
    multi-row INSERT. A row refused (a unique value taken, a reference missing) fails the
    call, and the writer then inserts the batch's rows one by one, each refused alone."""
    outcomes: list[Any] = [None] * len(calls)
    groups: dict[tuple[Caller, str, int], list[int]] = {}
    for i, call in enumerate(calls):
        groups.setdefault((call["caller"], call["table"], call["version"]), []).append(i)
    for (caller, table, version), indexes in groups.items():
        try:
            info = _as_sent(session, caller, table, version)
        except DomainError as exc:
            for i in indexes:
                outcomes[i] = exc
            continue
        rows = [calls[i]["row"] for i in indexes]
        created = insert_rows(session, caller=caller, info=info, rows=rows)
        for i, record in zip(indexes, created, strict=True):
            outcomes[i] = record
    return outcomes


@hotwrite.batched(insert_many)
def insert_one(
    session: Session, *, caller: Caller, table: str, version: int, row: dict[str, Any]
) -> dict[str, Any]:
    """Hot operation: insert ``row``, made by :func:`prepare_rows` from version ``version``
    of the table's description."""
    record: dict[str, Any] = hotwrite.one(
        insert_many, session, caller=caller, table=table, version=version, row=row
    )
    return record


def _as_sent(session: Session, caller: Caller, table: str, version: int) -> TableInfo:
    """The table's description at ``version``. Each process learns of a change to a table
    within a second (:mod:`gonghui.invalidation`); if the writer's copy and the sender's
    differ, the database decides, and a row made from an older description is refused
    (409), to be sent again."""
    info = infos.load(session, app_id=caller.app_id, name=table)
    if info.version != version:
        info = infos.load_fresh(session, app_id=caller.app_id, name=table)
        if info.version != version:
            raise Conflict(
                BaasError.TABLE_CHANGED,
                f"table {table} changed while the record was sent; send it again",
            )
    return info


def create_records(
    session: Session, *, caller: Caller, table: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert every item or none; errors name the item (``3.age``)."""
    info = _table(session, caller, table)
    if not may_create(caller, info.permissions):
        raise PermissionDenied(BaasError.FORBIDDEN, f"you may not add records to {table}")
    if len(items) > MAX_BULK:
        raise InvalidInput(BaasError.INVALID_RECORD, f"at most {MAX_BULK} records at once")
    rows = prepare_rows(info, items, caller=caller, numbered=len(items) > 1)
    return insert_rows(session, caller=caller, info=info, rows=rows)


def prepare_rows(
    info: TableInfo, items: list[dict[str, Any]], *, caller: Caller, numbered: bool
) -> list[dict[str, Any]]:
    """Column values for new records, every value checked, without touching the database
    (so before any write lock); errors name the item (``3.age``) when ``numbered``."""
    at = now()
    rows = []
    for i, item in enumerate(items):
        try:
            values = new_row(info, item)
        except InvalidInput as exc:
            if numbered and isinstance(exc.details, list):
                for d in exc.details:
                    d["field"] = f"{i}.{d['field']}"
            raise
        values.update(created_by=caller.user_id, created_at=at, updated_at=at)
        rows.append(values)
    return rows


def insert_rows(
    session: Session, *, caller: Caller, info: TableInfo, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert rows made by :func:`prepare_rows` (references checked), firing the triggers."""
    check_references(session, caller, info, rows)
    t = info.sql
    try:
        if len(rows) == 1:
            ids = [session.execute(info.insert_returning_id, rows[0]).scalar_one()]
        else:
            result = session.execute(
                insert(t).returning(t.c.id, sort_by_parameter_order=True), rows
            )
            ids = list(result.scalars())
    except IntegrityError as exc:
        raise _unique_conflict(info, exc) from exc
    created = [_echo(info, rid, row) for rid, row in zip(ids, rows, strict=True)]
    triggers.record_events(
        session, caller=caller, info=info, event=TriggerEvent.RECORD_CREATED, records=created
    )
    return created


def _echo(info: TableInfo, rid: int, row: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": rid,
        "created_by": row["created_by"],
        "created_at": to_json(FieldType.DATETIME, row["created_at"]),
        "updated_at": to_json(FieldType.DATETIME, row["updated_at"]),
    }
    for f in info.fields:
        record[f.name] = to_json(f.type, row[f.column])
    return record


def update_record(
    session: Session, *, caller: Caller, table: str, record_id: int, ops: dict[str, Any]
) -> dict[str, Any]:
    """Apply ``{"set": {...}, "unset": [...], "increment": {...}, "append": {...},
    "add_unique": {...}, "remove": {...}}`` to one record, atomically."""
    info = _table(session, caller, table)
    t = info.sql
    allowed = row_filter(caller, info.permissions, Action.UPDATE, t, info.id)
    unknown_ops = [k for k in ops if k not in UPDATE_OPS]
    if unknown_ops or not ops:
        raise InvalidInput(
            BaasError.INVALID_UPDATE,
            f"operators are {', '.join(UPDATE_OPS)}",
            [
                field_error(str(k), BaasError.INVALID_UPDATE, "unknown operator")
                for k in unknown_ops
            ],
        )
    touched: dict[str, str] = {}
    for op, body in ops.items():
        if op == "unset":
            if not isinstance(body, list) or not all(isinstance(n, str) for n in body):
                raise InvalidInput(BaasError.INVALID_UPDATE, "unset takes a list of field names")
        elif not isinstance(body, dict):
            raise InvalidInput(BaasError.INVALID_UPDATE, f"{op} takes an object of fields")
        check_known(info, dict.fromkeys(body), f"{op}.")
        for n in body:
            if n in touched:
                raise bad(n, f"appears in both {touched[n]} and {op}", BaasError.INVALID_UPDATE)
            touched[n] = op
    # Values that need no current row are checked before the row (and, on SQLite, the
    # database) is locked.
    values: dict[str, Any] = {}
    for name, op in touched.items():
        f = info.by_name[name]
        if op == "set":
            values[f.column] = stored_value(f, ops[op][name])
        elif op == "unset":
            values[f.column] = stored_value(f, None)
    # The row is locked for the read-modify-write of arrays (FOR UPDATE on PostgreSQL;
    # SQLite writers hold the database lock from BEGIN IMMEDIATE).
    current = session.execute(
        select(t).where(t.c.id == record_id, allowed).with_for_update()
    ).first()
    if current is None:
        raise record_not_found(record_id)
    values["updated_at"] = now()
    increments = []
    for name, op in touched.items():
        if op in ("set", "unset"):
            continue
        f = info.by_name[name]
        arg = ops[op][name]
        col = t.c[f.column]
        if op == "increment":
            if f.type not in NUMERIC:
                raise bad(name, "increment applies to numbers", BaasError.INVALID_UPDATE)
            step = coerce_scalar(f.type, arg, name)
            values[f.column] = func.coalesce(col, 0) + bindparam(
                f"inc_{f.id}", step, type_=col.type
            )
            increments.append(f)
        else:
            if f.type is not FieldType.ARRAY:
                raise bad(name, f"{op} applies to arrays", BaasError.INVALID_UPDATE)
            if not isinstance(arg, list):
                raise bad(name, f"{op} takes a list of items", BaasError.INVALID_UPDATE)
            items = list(current._mapping[f.column] or [])
            if op == "append":
                items.extend(arg)
            elif op == "add_unique":
                items.extend(x for i, x in enumerate(arg) if x not in items and x not in arg[:i])
            else:
                items = [x for x in items if x not in arg]
            values[f.column] = stored_value(f, items)
    try:
        session.execute(update(t).where(t.c.id == record_id).values(values))
    except IntegrityError as exc:
        raise _unique_conflict(info, exc) from exc
    check_references(session, caller, info, [values])
    row = session.execute(select(t).where(t.c.id == record_id)).one()
    for f in increments:
        check_rules(f.rules, row._mapping[f.column], f.name)
    record = to_record(info, row)
    triggers.record_events(
        session, caller=caller, info=info, event=TriggerEvent.RECORD_UPDATED, records=[record]
    )
    return record


def delete_record(session: Session, *, caller: Caller, table: str, record_id: int) -> None:
    info = _table(session, caller, table)
    t = info.sql
    allowed = row_filter(caller, info.permissions, Action.DELETE, t, info.id)
    row = session.execute(select(t).where(t.c.id == record_id, allowed)).first()
    if row is None:
        raise record_not_found(record_id)
    # Fired before the row goes, so filters see it; a failed delete rolls the events back.
    triggers.record_events(
        session,
        caller=caller,
        info=info,
        event=TriggerEvent.RECORD_DELETED,
        records=[to_record(info, row)],
    )
    if rowcount(session.execute(delete(t).where(t.c.id == record_id, allowed))) == 0:
        raise record_not_found(record_id)
    session.execute(
        delete(RecordAcl).where(RecordAcl.table_id == info.id, RecordAcl.record_id == record_id)
    )
    caller.audit(
        session,
        action="baas.record.delete",
        subject_type="baas_record",
        subject_id=f"{table}/{record_id}",
    )


def set_acl(
    session: Session, *, caller: Caller, table: str, record_id: int, acl: dict[str, list[int]]
) -> dict[str, list[int]]:
    """Replace a record's ACL (``{"read": [user ids], "update": [...], "delete": [...]}``);
    an action left out is governed by the table rule alone. Needs update rights."""
    info = _table(session, caller, table)
    t = info.sql
    allowed = row_filter(caller, info.permissions, Action.UPDATE, t, info.id)
    if session.scalar(select(t.c.id).where(t.c.id == record_id, allowed)) is None:
        raise record_not_found(record_id)
    clean: dict[str, list[int]] = {}
    for action, users in acl.items():
        if action not in (Action.READ, Action.UPDATE, Action.DELETE):
            raise bad(f"acl.{action}", "actions are read, update, delete", BaasError.INVALID_UPDATE)
        if not isinstance(users, list) or not all(
            isinstance(u, int) and not isinstance(u, bool) for u in users
        ):
            raise bad(f"acl.{action}", "a list of user ids", BaasError.INVALID_UPDATE)
        clean[action] = sorted(set(users))
    session.execute(
        delete(RecordAcl).where(RecordAcl.table_id == info.id, RecordAcl.record_id == record_id)
    )
    for action, users in clean.items():
        for uid in users:
            session.add(
                RecordAcl(table_id=info.id, record_id=record_id, action=action, user_id=uid)
            )
    session.flush()
    return clean

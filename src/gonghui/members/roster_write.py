"""Writing prepared roster rows: one upsert per transaction, by ID-number blind index.

Rows arrive validated and sealed (see :mod:`gonghui.members.roster_rows`). Each call checks
which people are already on file (to count updates, to spot a person twice in one file,
and to refuse taking over someone on a roster outside the importer's subtree), then runs
``INSERT ... ON CONFLICT (id_number_hash) DO UPDATE`` with the driver's executemany.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gonghui.accounts import principal as principals
from gonghui.clock import now
from gonghui.db import is_sqlite, on_commit
from gonghui.members.models import Membership, RosterEntry, Transfer
from gonghui.members.roster_rows import RowError, SealedRow
from gonghui.tenancy import Actor

# Parameters per IN (...) lookup on SQLite.
LOOKUP_CHUNK = 2000


_UPSERT_COLUMNS = (
    "org_id",
    "id_number_hash",
    "id_number_enc",
    "name_hash",
    "name_enc",
    "phone_hash",
    "phone_enc",
    "phone_key",
    "member_no",
    "join_date",
    "import_job_id",
    "created_at",
    "updated_at",
)
_REFRESHED = tuple(c for c in _UPSERT_COLUMNS if c not in ("id_number_hash", "created_at"))


class _Upsert:
    """``INSERT ... ON CONFLICT (id_number_hash) DO UPDATE`` built with the dialect's own
    insert construct and compiled once; rows go straight to the driver's executemany.

    Per-row parameter processing in the ORM/Core layer cost more than the database work,
    so values are handed over already in the driver's form: bytes for the binary columns,
    and the dialect's own bind processors applied to dates and timestamps."""

    def __init__(self, session: Session) -> None:
        dialect = session.get_bind().dialect
        table: Table = RosterEntry.__table__  # type: ignore[assignment]
        insert = sqlite.insert if dialect.name == "sqlite" else postgresql.insert
        stmt = insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.id_number_hash],
            set_={name: stmt.excluded[name] for name in _REFRESHED},
        )
        # Rows are tuples in _UPSERT_COLUMNS order, so the statement takes positional
        # parameters (psycopg's "%s" rather than the dialect's named default).
        positional: Dialect = (
            dialect if dialect.positional else type(dialect)(paramstyle="format")  # type: ignore[call-arg]
        )
        compiled = stmt.compile(dialect=positional, column_keys=list(_UPSERT_COLUMNS))
        self.sql = str(compiled)
        self.reorder: Callable[[tuple[Any, ...]], Any] | None = None
        order = tuple(_UPSERT_COLUMNS.index(k) for k in compiled.positiontup or ())
        if order != tuple(range(len(_UPSERT_COLUMNS))):
            self.reorder = itemgetter(*order)
        self.date = table.c.join_date.type.dialect_impl(dialect).bind_processor(dialect)
        # The dialect-level processor: on SQLite a string, so that the driver's deprecated
        # default datetime adapter is never used.
        self.stamp = table.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)

    def timestamp(self, value: datetime) -> Any:
        return self.stamp(value) if self.stamp else value

    def execute(self, session: Session, rows: list[tuple[Any, ...]]) -> None:
        # (On PostgreSQL this measured faster than SQLAlchemy's multi-row VALUES batches.)
        params: list[Any] = rows if self.reorder is None else list(map(self.reorder, rows))
        session.connection().exec_driver_sql(self.sql, params)


@dataclass
class Tally:
    rows_done: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    moved: int = 0


def write_batch(
    session: Session,
    *,
    job_id: int,
    actor: Actor,
    allowed_org_ids: set[int],
    rows: list[SealedRow],
    report: list[RowError],
    tally: Tally,
    in_key_order: bool = False,
) -> None:
    # A person twice in one batch: the later row is the duplicate.
    unique: dict[bytes, SealedRow] = {}
    for row in rows:
        if row[1] in unique:
            report.append(_duplicate(row[0]))
            tally.rows_failed += 1
        else:
            unique[row[1]] = row
    if not unique:
        return
    existing = _existing(session, list(unique))
    upsert = _Upsert(session)
    stamp = upsert.timestamp(now())
    to_date = upsert.date
    params: list[tuple[Any, ...]] = []
    moves: list[tuple[int, int, int]] = []  # entry id, from org, to org
    for h, row in unique.items():
        found = existing.get(h)
        if found is not None:
            ident, org_id, prior_job = found
            if prior_job == job_id:
                # Already written by an earlier batch of this same file.
                report.append(_duplicate(row[0]))
                tally.rows_failed += 1
                continue
            if org_id not in allowed_org_ids:
                report.append(
                    RowError(
                        row[0],
                        "id_number",
                        "id_number.on_other_roster",
                        "this person is on the roster of a union outside yours; "
                        "ask that union to transfer them",
                    )
                )
                tally.rows_failed += 1
                continue
            if org_id != row[8]:
                moves.append((ident, org_id, row[8]))
            tally.rows_updated += 1
        else:
            tally.rows_created += 1
        tally.rows_ok += 1
        params.append(
            (
                row[8],
                h,
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                row[10],
                row[7],
                to_date(row[9]) if to_date and row[9] is not None else row[9],
                job_id,
                stamp,
                stamp,
            )
        )
    if params:
        if in_key_order:
            # Consecutive inserts share index pages (large imports; new entries' ids then
            # follow the hash order, not the file's).
            params.sort(key=itemgetter(1))
        upsert.execute(session, params)
    if moves:
        _record_moves(session, job_id=job_id, actor=actor, moves=moves)
        tally.moved += len(moves)


_EXISTING_SQL = (
    "SELECT id_number_hash, id, org_id, import_job_id FROM members_roster_entry "
    "WHERE id_number_hash "
)


def _existing(session: Session, hashes: list[bytes]) -> dict[bytes, tuple[int, int, int | None]]:
    """Entries already on file for these ID hashes: id, org, the import that last wrote
    them. Plain driver SQL: building a 20,000-parameter IN through the compiler cost more
    than the lookup itself."""
    connection = session.connection()
    found: dict[bytes, tuple[int, int, int | None]] = {}
    if is_sqlite(session):
        for i in range(0, len(hashes), LOOKUP_CHUNK):
            chunk = tuple(hashes[i : i + LOOKUP_CHUNK])
            sql = _EXISTING_SQL + "IN (" + ",".join("?" * len(chunk)) + ")"
            for h, ident, org_id, job in connection.exec_driver_sql(sql, chunk):
                found[bytes(h)] = (ident, org_id, job)
    else:
        sql = _EXISTING_SQL + "= ANY(%(hashes)s)"
        for h, ident, org_id, job in connection.exec_driver_sql(sql, {"hashes": hashes}):
            found[bytes(h)] = (ident, org_id, job)
    return found


def _record_moves(
    session: Session, *, job_id: int, actor: Actor, moves: list[tuple[int, int, int]]
) -> None:
    """A re-import that puts someone under another org is a transfer: their membership
    follows (it is kept equal to the roster entry's org) and the move is recorded."""
    for entry_id, from_org, to_org in moves:
        session.execute(
            update(Membership)
            .where(Membership.roster_entry_id == entry_id)
            .values(org_id=to_org)
            .execution_options(synchronize_session=False)
        )
        session.add(
            Transfer(
                roster_entry_id=entry_id,
                from_org_id=from_org,
                to_org_id=to_org,
                by_user_id=actor.user_id,
                reason=f"roster import {job_id}",
            )
        )
    on_commit(session, principals.forget_all)


def _duplicate(row: int) -> RowError:
    return RowError(
        row,
        "id_number",
        "id_number.duplicate",
        "the same ID number appears on an earlier row of this file",
    )

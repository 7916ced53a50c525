"""Writing prepared roster rows: one upsert per transaction, by ID-number blind index.

Rows arrive validated and sealed (see :mod:`gonghui.members.roster_rows`). Each call first
inserts the people not on file yet (``INSERT ... ON CONFLICT (id_number_hash) DO
NOTHING``: on SQLite with the driver's executemany, on PostgreSQL from a COPY). Only when
some of them were already on file does it look those up (to count updates, to spot a
person twice in one file, and to refuse taking over someone on a roster outside the
importer's subtree) and update them with ``INSERT ... ON CONFLICT (id_number_hash) DO
UPDATE``: a first import, the large case, needs no lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Dialect, Table, func, null, select, update
from sqlalchemy.orm import Session

from gonghui.accounts import principal as principals
from gonghui.clock import now
from gonghui.db import in_ids, is_sqlite, rowcount, upsert_insert
from gonghui.members.models import Membership, RosterEntry, Transfer
from gonghui.members.roster_rows import ID_HASH, ROW_NUMBER, TAGS, RowError, SealedRow
from gonghui.tenancy import Actor

if TYPE_CHECKING:
    import psycopg

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
    "tags",
    "import_job_id",
    "created_at",
    "updated_at",
)
_REFRESHED = tuple(c for c in _UPSERT_COLUMNS if c not in ("id_number_hash", "created_at"))


class _Upsert:
    """``INSERT ... ON CONFLICT (id_number_hash) DO UPDATE`` (or ``DO NOTHING``) built with
    the dialect's own insert construct and compiled once per transaction; rows go straight
    to the driver's executemany.

    Per-row parameter processing in the ORM/Core layer cost more than the database work,
    so values are handed over already in the driver's form (see ``roster_rows``), with the
    dialect's own bind processor applied to the timestamps."""

    def __init__(self, session: Session, *, update: bool) -> None:
        dialect = session.get_bind().dialect
        table: Table = RosterEntry.__table__  # type: ignore[assignment]
        stmt = upsert_insert(dialect.name)(table)
        if update:
            refreshed: dict[str, Any] = {name: stmt.excluded[name] for name in _REFRESHED}
            # A row without tags (no tags column, or an empty cell) keeps the person's tags.
            refreshed["tags"] = func.coalesce(stmt.excluded.tags, table.c.tags)
            # Someone who had left (退会) and is imported again is on the roster again.
            refreshed["left_at"] = null()
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.id_number_hash], set_=refreshed
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[table.c.id_number_hash])
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
        # The dialect-level processor: on SQLite a string, so that the driver's deprecated
        # default datetime adapter is never used.
        self.stamp = table.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)

    def timestamp(self, value: datetime) -> Any:
        return self.stamp(value) if self.stamp else value

    def execute(self, session: Session, rows: list[SealedRow], tail: tuple[Any, ...]) -> int:
        """Runs the statement for each row (its first ten values and ``tail``: the job id
        and the timestamps); returns the rows inserted or updated."""
        # (On PostgreSQL this measured faster than SQLAlchemy's multi-row VALUES batches.)
        params: Iterable[Any] = (row[:_ROW_VALUES] + tail for row in rows)
        if self.reorder is not None:
            params = map(self.reorder, params)
        # The DBAPI cursor itself: it takes the rows as an iterator (no list of parameter
        # tuples; both drivers accept any iterable) and counts the rows written.
        cursor = session.connection().connection.cursor()
        try:
            cursor.executemany(self.sql, cast(Sequence[Any], params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def insert_new(self, session: Session, rows: list[SealedRow], tail: tuple[Any, ...]) -> int:
        """Inserts the rows not on file yet (a ``DO NOTHING`` statement); returns how many.
        PostgreSQL takes them with COPY into a temporary table and one ``INSERT ...
        SELECT``: a statement per row costs it a round of parse, plan and execute each."""
        if is_sqlite(session):
            return self.execute(session, rows, tail)
        columns = ", ".join(_UPSERT_COLUMNS)
        cursor = cast("psycopg.Cursor[Any]", session.connection().connection.cursor())
        try:
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_STAGING} AS SELECT {columns}, 0 AS ordinal "
                "FROM members_roster_entry WITH NO DATA"
            )
            with cursor.copy(f"COPY {_STAGING} ({columns}, ordinal) FROM STDIN") as copy:
                write = copy.write_row
                for ordinal, row in enumerate(rows):
                    write(row[:_ROW_VALUES] + tail + (ordinal,))
            cursor.execute(
                f"INSERT INTO members_roster_entry ({columns}) SELECT {columns} FROM {_STAGING} "
                "ORDER BY ordinal ON CONFLICT (id_number_hash) DO NOTHING"
            )
            created = int(cursor.rowcount)
            cursor.execute(f"DROP TABLE {_STAGING}")
            return created
        finally:
            cursor.close()


_STAGING = "roster_import_staging"


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
    unique = _drop_repeats(rows, report, tally, in_key_order=in_key_order)
    if not unique:
        return
    insert = _Upsert(session, update=False)
    stamp = insert.timestamp(now())
    tail = (job_id, stamp, stamp)
    # Entries written by this statement have ids above every id on file before it
    # (SQLite: the next rowid; PostgreSQL: the sequence only grows).
    before = session.connection().exec_driver_sql(_MAX_ID_SQL).scalar() or 0
    created = insert.insert_new(session, unique, tail)
    tally.rows_created += created
    tally.rows_ok += created
    if created == len(unique):
        return
    existing = _existing(session, [bytes(row[1]) for row in unique])
    updates: list[SealedRow] = []
    moves: list[tuple[int, int, int]] = []  # entry id, from org, to org
    retagged: list[int] = []  # entries whose row gives tags
    for row in unique:
        found = existing.get(bytes(row[1]))
        if found is None:  # deleted meanwhile (not on SQLite): the upsert writes it again
            updates.append(row)
            continue
        ident, org_id, prior_job = found
        if prior_job == job_id:
            if ident > before:
                continue  # inserted just now
            # Already written by an earlier transaction of this same file.
            report.append(_duplicate(row[ROW_NUMBER]))
            tally.rows_failed += 1
            continue
        if org_id not in allowed_org_ids:
            report.append(
                RowError(
                    row[ROW_NUMBER],
                    "id_number",
                    "id_number.on_other_roster",
                    "this person is on the roster of a union outside yours; "
                    "ask that union to transfer them",
                )
            )
            tally.rows_failed += 1
            continue
        if org_id != row[0]:
            moves.append((ident, org_id, row[0]))
        if row[TAGS] is not None:
            retagged.append(ident)
        updates.append(row)
    if updates:
        _Upsert(session, update=True).execute(session, updates, tail)
        tally.rows_updated += len(updates)
        tally.rows_ok += len(updates)
    if moves:
        _record_moves(session, job_id=job_id, actor=actor, moves=moves)
        tally.moved += len(moves)
    if retagged:
        _copy_tags_to_memberships(session, retagged)


def _copy_tags_to_memberships(session: Session, entry_ids: list[int]) -> None:
    """Memberships carry a copy of their roster entry's tags (the sign-in's claims)."""
    entry = RosterEntry.__table__
    changed = rowcount(
        session.execute(
            update(Membership)
            .where(in_ids(Membership.roster_entry_id, "entry_ids"))
            .values(
                tags=select(entry.c.tags)
                .where(entry.c.id == Membership.roster_entry_id)
                .scalar_subquery()
            )
            .execution_options(synchronize_session=False),
            {"entry_ids": entry_ids},
        )
    )
    if changed:
        principals.changed(session, everyone=True)


def _drop_repeats(
    rows: list[SealedRow], report: list[RowError], tally: Tally, *, in_key_order: bool
) -> list[SealedRow]:
    """The rows without a person's second and later rows, which are reported as duplicates.
    With ``in_key_order`` (large imports) the rows come back sorted by ID-number hash:
    consecutive inserts then share index pages, and new entries' ids follow the hash order
    rather than the file's."""
    unique: list[SealedRow] = []
    keep = unique.append
    if in_key_order:
        rows.sort(key=ID_HASH)  # stable: a person's rows stay in file order
        previous = None
        for row in rows:
            if row[1] == previous:
                report.append(_duplicate(row[ROW_NUMBER]))
                tally.rows_failed += 1
            else:
                previous = row[1]
                keep(row)
        return unique
    seen: set[bytes] = set()
    for row in rows:
        key = bytes(row[1])
        if key in seen:
            report.append(_duplicate(row[ROW_NUMBER]))
            tally.rows_failed += 1
        else:
            seen.add(key)
            keep(row)
    return unique


_ROW_VALUES = ROW_NUMBER  # the row's values for the statement, before its number
_MAX_ID_SQL = "SELECT max(id) FROM members_roster_entry"
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
    principals.changed(session, everyone=True)


def _duplicate(row: int) -> RowError:
    return RowError(
        row,
        "id_number",
        "id_number.duplicate",
        "the same ID number appears on an earlier row of this file",
    )

"""Running an import: the file is written in units of work, bad rows go to the error
report.

One unit of work per 2,000 rows (50,000 for large files), each upserting them by
ID-number blind index (``INSERT ... ON CONFLICT DO UPDATE``, see
:mod:`gonghui.members.roster_write`) and advancing the job's progress counters and
heartbeat in the same transaction, so progress never runs ahead of the data. Bad rows are
written to an error report (row, field, code, reason; never the values) and never block
the good ones.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.cells import safe_row
from gonghui.clock import local_day, now
from gonghui.db import is_sqlite, rowcount, unit_of_work
from gonghui.members.models import ImportJob, ImportStatus
from gonghui.members.roster_file import RosterFileError, RosterReader
from gonghui.members.roster_import import pipeline
from gonghui.members.roster_import.jobs import UNFINISHED, report_key
from gonghui.members.roster_import.pipeline import Batch
from gonghui.members.roster_rows import RowError, RowPreparer
from gonghui.members.roster_write import Tally, write_batch
from gonghui.orgs.models import Org
from gonghui.pii import BulkSealer
from gonghui.storage import get_store
from gonghui.tenancy import Actor, Permission, require_org, subtree_condition, within

log = logging.getLogger("gonghui.members.import")

# Rows per transaction for ordinary files, and per task handed to a worker process for
# XLSX files; a CSV task is a chunk of about CHUNK_BYTES (some 2,000 rows).
BATCH_ROWS = 2000
CHUNK_BYTES = 128 * 1024
# Large files (hundreds of thousands of rows) are validated and sealed by a process pool
# and written in bigger transactions: with random blind-index keys each transaction
# rewrites most index leaves it touches, so fewer, larger ones write far less (on SQLite
# 50,000 rows cost a fifth less per row than 20,000). A 50,000-row transaction holds
# SQLite's write lock for about half a second; rows are sorted by hash over the whole
# transaction, which is what makes its index writes local.
LARGE_FILE_BYTES = 8 * 1024 * 1024
LARGE_TRANSACTION_ROWS = 50_000
SQLITE_CACHE_KIB = 32 * 1024
SQLITE_CHECKPOINT_PAGES = 64 * 1024  # 256 MB of WAL
REPORT_HEADER = ("row", "field", "code", "reason")
# Transactions read and prepared ahead of the one being written.
READ_AHEAD = 2


class ImportInterrupted(RuntimeError):
    """The job was marked interrupted (its heartbeat had stopped) while this process still
    worked on it; the import stops rather than overwrite that outcome."""


@dataclass(frozen=True)
class ImportProgress:
    job_id: int
    bytes_done: int
    bytes_total: int
    rows_done: int
    rows_ok: int
    rows_failed: int


ProgressCallback = Callable[[ImportProgress], None]


def _org_map(session: Session, *, actor: Actor, org: Org) -> dict[str, int]:
    """Codes of the active orgs the import may write to: the target org's subtree, within
    the actor's own scope."""
    stmt = select(Org.code, Org.id).where(within(Org.path, org.path), Org.archived_at.is_(None))
    if not actor.is_platform_admin:
        stmt = stmt.where(subtree_condition(Org.path, actor.roots(Permission.MEMBERS_MANAGE)))
    return {str(code): int(ident) for code, ident in session.execute(stmt)}


class _ErrorReport:
    """The error report, spooled to a temporary file and stored when the import ends."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()
        self.text = io.TextIOWrapper(self.file, encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.text)
        self.writer.writerow(REPORT_HEADER)
        self.lines = 0

    def add(self, errors: Iterable[RowError]) -> None:
        for e in errors:
            self.writer.writerow(safe_row((e.row, e.field, e.code, e.reason)))
            self.lines += 1

    def store(self, key: str) -> None:
        self.text.flush()
        self.file.seek(0)
        get_store().put(key, iter(lambda: self.file.read(1 << 16), b""))

    def close(self) -> None:
        self.text.close()


def _tune_connection(session: Session, *, large: bool) -> None:
    # Blind indexes are random keys: every insert lands on a random leaf of the ID and
    # phone indexes. A page cache that holds those leaves for the whole transaction
    # (instead of SQLite's 2 MB default) halves the cost of a large import. 32 MB holds
    # them (``make bench W=roster_import``: 74,500 rows/s at 32 MB, 74,200 at 64 MB, whose
    # fuller cache took the importer past 300 MB once the roster had a name index).
    # Each transaction also rewrites most of those leaves into the WAL; checkpointing
    # after every commit (SQLite's default, at 1,000 pages) would copy them back into the
    # database each time, so a large import lets the WAL grow and checkpoints less often.
    if large and is_sqlite(session):
        connection = session.connection()
        connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")


def _untune_connection(session: Session) -> None:
    if is_sqlite(session):
        connection = session.connection()
        connection.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's defaults
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=1000")


@dataclass
class _Run:
    """One import under way: what it may write, and what it has done so far."""

    job_id: int
    actor: Actor
    allowed_org_ids: set[int]
    large: bool
    bytes_total: int
    report: _ErrorReport
    progress: ProgressCallback | None
    tally: Tally = field(default_factory=Tally)

    def write(self, packed: list[Batch], bytes_done: int) -> None:
        """One unit of work: upsert the good rows, advance the job's counters."""
        batches = [batch.unpack() for batch in packed]
        del packed[:]  # the pickled form is not needed any more
        rows = [row for batch in batches for row in batch.rows]
        errors = [error for batch in batches for error in batch.errors]
        for batch in batches:
            self.tally.rows_failed += batch.failed_rows
            self.tally.rows_done += len(batch.rows) + batch.failed_rows
        with unit_of_work() as session:
            _tune_connection(session, large=self.large)
            write_batch(
                session,
                job_id=self.job_id,
                actor=self.actor,
                allowed_org_ids=self.allowed_org_ids,
                rows=rows,
                report=errors,
                tally=self.tally,
                in_key_order=self.large,
            )
            _save_progress(session, self.job_id, bytes_done, self.tally)
        self.report.add(sorted(errors, key=lambda e: e.row))
        self.notify(bytes_done)

    def finish(self, failure: str | None, bytes_done: int) -> ImportJob:
        with unit_of_work() as session:
            _untune_connection(session)
            _save_progress(session, self.job_id, bytes_done, self.tally)
            job = session.get(ImportJob, self.job_id)
            assert job is not None
            session.refresh(job)
            job.status = ImportStatus.FAILED if failure else ImportStatus.DONE
            job.error = failure
            job.error_report_path = report_key(self.job_id)
            job.finished_at = now()
            tally = self.tally
            audit.record(
                session,
                actor=self.actor,
                action="members.roster_import",
                org_id=job.org_id,
                subject_type="import_job",
                subject_id=job.id,
                details={
                    "filename": job.filename,
                    "status": str(job.status),
                    "rows_ok": tally.rows_ok,
                    "rows_failed": tally.rows_failed,
                    "rows_created": tally.rows_created,
                    "rows_updated": tally.rows_updated,
                    "moved": tally.moved,
                },
            )
        self.notify(bytes_done)
        return job

    def notify(self, bytes_done: int) -> None:
        if self.progress is not None:
            self.progress(_progress(self.job_id, bytes_done, self.bytes_total, self.tally))


def run_import(
    *,
    job_id: int,
    actor: Actor,
    source: BinaryIO,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    transaction_rows: int | None = None,
) -> ImportJob:
    """Import ``source`` (a seekable binary file) for the job; returns the finished job.

    File-level problems (empty, not a table, no name/ID columns) finish the job as failed
    with a one-line error report; an unexpected error marks it failed and propagates."""
    with unit_of_work() as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            raise LookupError(f"import job {job_id} does not exist")
        org = require_org(session, actor, Permission.MEMBERS_MANAGE, job.org_id)
        org_map = _org_map(session, actor=actor, org=org)
        job.status = ImportStatus.RUNNING
        job.started_at = job.heartbeat_at = now()
        bytes_total, filename, default_org = job.bytes_total, job.filename, org.id
        dates_as_text = is_sqlite(session)
    large = bytes_total >= LARGE_FILE_BYTES
    sealer = BulkSealer.from_settings()
    today = local_day()
    preparer = RowPreparer(
        sealer=sealer,
        org_ids_by_code=org_map,
        default_org_id=default_org,
        today=today,
        dates_as_text=dates_as_text,
        in_key_order=large,
    )
    init_args = (
        sealer.hmac_key,
        sealer.encryption_key,
        org_map,
        default_org,
        today,
        dates_as_text,
        large,
    )
    reader = RosterReader(source, filename)
    report = _ErrorReport()
    run = _Run(job_id, actor, set(org_map.values()), large, bytes_total, report, progress)
    failure: str | None = None
    try:
        try:
            pieces = reader.pieces(rows=BATCH_ROWS, chunk_bytes=CHUNK_BYTES)
            prepared = pipeline.prepared(
                pieces, preparer, pipeline.pool_size(large, workers), init_args
            )
            per_transaction = transaction_rows or (LARGE_TRANSACTION_ROWS if large else BATCH_ROWS)
            transactions = pipeline.transactions(prepared, per_transaction)
            for batches, bytes_done in pipeline.read_ahead(transactions, READ_AHEAD):
                run.write(batches, bytes_done)
        except RosterFileError as exc:
            failure = exc.code
            row = 0 if exc.code == "file.empty" else 1
            report.add([RowError(row, "file", exc.code, str(exc))])
        report.store(report_key(job_id))
    except BaseException:
        mark_failed(job_id, "internal error")
        raise
    finally:
        report.close()
    return run.finish(failure, bytes_total or reader.bytes_read)


def _progress(job_id: int, done: int, total: int, tally: Tally) -> ImportProgress:
    return ImportProgress(job_id, done, total, tally.rows_done, tally.rows_ok, tally.rows_failed)


def _save_progress(session: Session, job_id: int, bytes_done: int, tally: Tally) -> None:
    """Advance the counters and the heartbeat of a running job."""
    saved = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.status == ImportStatus.RUNNING)
        .values(
            heartbeat_at=now(),
            bytes_done=bytes_done,
            rows_done=tally.rows_done,
            rows_ok=tally.rows_ok,
            rows_failed=tally.rows_failed,
            rows_created=tally.rows_created,
            rows_updated=tally.rows_updated,
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(saved) != 1:
        raise ImportInterrupted(f"import job {job_id} is no longer running")


def mark_failed(job_id: int, message: str) -> None:
    try:
        with unit_of_work() as session:
            _untune_connection(session)
            session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id, ImportJob.status.in_(UNFINISHED))
                .values(status=ImportStatus.FAILED, error=message, finished_at=now())
            )
    except Exception:  # the original error matters more
        log.exception("could not mark import job %s failed", job_id)

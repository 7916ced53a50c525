"""Roster import: a file of people becomes roster entries, bad rows become an error report.

An import owns its units of work: one per 2,000 rows (50,000 for large files), each
upserting them by ID-number blind index (``INSERT ... ON CONFLICT DO UPDATE``, see
:mod:`gonghui.members.roster_write`) and advancing the job's progress counters in the same
transaction, so progress never runs ahead of the data.
Bad rows are written to an error report (row, field, code, reason; never the values) and
never block the good ones. Validation and sealing are the CPU cost; large files hand them
to a process pool, which also parses CSV files: this process only cuts the file into
chunks of whole records. A reader thread reads the file and collects prepared batches
ahead of the thread that writes the database.

While it runs, an import refreshes its job's heartbeat with every commit; housekeeping
fails the unfinished jobs whose heartbeat stopped (their process died) and deletes
uploads, which hold personal data in plain text, once their import has ended
(:func:`tidy_imports`).
"""

from __future__ import annotations

import csv
import io
import logging
import multiprocessing
import os
import queue
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, Any, BinaryIO, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.cells import safe_row
from gonghui.clock import local_day, now
from gonghui.db import is_sqlite, on_commit, on_rollback, rowcount, unit_of_work
from gonghui.errors import PayloadTooLarge
from gonghui.members.errors import MembersError
from gonghui.members.models import ImportJob, ImportStatus
from gonghui.members.roster_file import Piece, RosterFileError, RosterReader
from gonghui.members.roster_rows import (
    PackedBatch,
    PreparedBatch,
    RowError,
    RowPreparer,
    init_worker,
    prepare_in_worker,
)
from gonghui.members.roster_write import Tally, write_batch
from gonghui.orgs.models import Org
from gonghui.pii import BulkSealer
from gonghui.settings import get_settings
from gonghui.storage import get_store
from gonghui.tenancy import (
    SYSTEM,
    Actor,
    Permission,
    get_scoped,
    require_org,
    scoped,
    subtree_condition,
    within,
)

log = logging.getLogger("gonghui.members.import")
_T = TypeVar("_T")

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
POOL_WORKERS = 2
SQLITE_CACHE_KIB = 64 * 1024
SQLITE_CHECKPOINT_PAGES = 64 * 1024  # 256 MB of WAL
REPORT_HEADER = ("row", "field", "code", "reason")
# Transactions read and prepared ahead of the one being written.
READ_AHEAD = 2
INTERRUPTED = "interrupted: the server stopped during the import; upload the file again"
_UNFINISHED = (ImportStatus.QUEUED, ImportStatus.RUNNING)


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


def create_job(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    filename: str,
    stored_path: str = "",
    bytes_total: int = 0,
) -> ImportJob:
    org = require_org(session, actor, Permission.MEMBERS_MANAGE, org_id)
    job = ImportJob(
        org_id=org.id,
        created_by=actor.user_id,
        filename=filename[-255:] or "roster",
        stored_path=stored_path,
        bytes_total=bytes_total,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, actor: Actor, job_id: int) -> ImportJob:
    return get_scoped(session, ImportJob, job_id, actor, Permission.MEMBERS_MANAGE)


def list_jobs(session: Session, *, actor: Actor, org_id: int, limit: int = 50) -> list[ImportJob]:
    """The imports of an org's subtree, newest first."""
    org = require_org(session, actor, Permission.MEMBERS_MANAGE, org_id)
    stmt = (
        scoped(select(ImportJob), actor, Permission.MEMBERS_MANAGE)
        .join(Org, Org.id == ImportJob.org_id)
        .where(within(Org.path, org.path))
        .order_by(ImportJob.id.desc())
        .limit(min(max(limit, 1), 200))
    )
    return list(session.scalars(stmt))


def report_key(job_id: int) -> str:
    return f"roster-imports/{job_id}/errors.csv"


def upload_key(job_id: int) -> str:
    return f"roster-imports/{job_id}/upload"


def _org_map(session: Session, *, actor: Actor, org: Org) -> dict[str, int]:
    """Codes of the active orgs the import may write to: the target org's subtree, within
    the actor's own scope."""
    stmt = select(Org.code, Org.id).where(within(Org.path, org.path), Org.archived_at.is_(None))
    if not actor.is_platform_admin:
        stmt = stmt.where(subtree_condition(Org.path, actor.roots(Permission.MEMBERS_MANAGE)))
    return {str(code): int(ident) for code, ident in session.execute(stmt)}


# Prepared in this process, or by a worker and still pickled.
Batch = PreparedBatch | PackedBatch


def _prepared(
    pieces: Iterator[tuple[Piece, int]],
    preparer: RowPreparer,
    workers: int,
    init_args: tuple[Any, ...],
) -> Iterator[tuple[Batch, int]]:
    """Prepared batches in file order; with ``workers`` > 0 a bounded window of pieces is
    in flight in a process pool (memory stays constant: the file is never read ahead by
    more than the window)."""
    if workers < 1:
        for piece, mark in pieces:
            yield preparer.prepare(piece), mark
        return
    # spawn: the importing process may run threads (the API server), and fork would copy
    # their locks mid-flight.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=init_worker, initargs=init_args
    ) as pool:
        window: deque[tuple[Future[PackedBatch], int]] = deque()
        for piece, mark in pieces:
            window.append((pool.submit(prepare_in_worker, piece), mark))
            if len(window) >= workers * 3:
                future, done_mark = window.popleft()
                yield future.result(), done_mark
        while window:
            future, done_mark = window.popleft()
            yield future.result(), done_mark


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


def _pool_size(large: bool, workers: int | None) -> int:
    """Worker processes for validation and sealing; 0 means in this process."""
    if workers is not None:
        return workers
    cpus = os.cpu_count() or 1
    return min(cpus - 1, POOL_WORKERS) if large and cpus > 1 else 0


def _tune_connection(session: Session, *, large: bool) -> None:
    # Blind indexes are random keys: every insert lands on a random leaf of the ID and
    # phone indexes. A page cache that holds those leaves for the whole transaction
    # (instead of SQLite's 2 MB default) halves the cost of a large import.
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


def _read_ahead(items: Iterator[_T], depth: int) -> Iterator[_T]:
    """``items`` produced by a thread of its own, at most ``depth`` ahead, so that reading
    the file and collecting prepared batches overlap the database writes (the SQLite and
    PostgreSQL drivers release the GIL while the database works). Memory stays bounded by
    ``depth``; an error in the thread is raised here, and stopping early stops the thread."""
    handoff: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:
            put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's clean-up (the worker pool) runs in this thread

    thread = threading.Thread(target=produce, name="roster-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            more, value = handoff.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        thread.join()


def _transactions(
    prepared: Iterator[tuple[Batch, int]], rows_per_transaction: int
) -> Iterator[tuple[list[Batch], int]]:
    """Group prepared batches into transactions of about ``rows_per_transaction`` rows. A
    batch that met a file-level error ends the import: its rows are written, then the
    error is raised."""
    group: list[Batch] = []
    rows = 0
    mark = 0
    for batch, mark in prepared:
        group.append(batch)
        rows += batch.size
        if batch.file_error is not None:
            yield group, mark
            raise RosterFileError(*batch.file_error)
        if rows >= rows_per_transaction:
            yield group, mark
            group, rows = [], 0
    if group:
        yield group, mark


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
            prepared = _prepared(pieces, preparer, _pool_size(large, workers), init_args)
            per_transaction = transaction_rows or (LARGE_TRANSACTION_ROWS if large else BATCH_ROWS)
            transactions = _transactions(prepared, per_transaction)
            for batches, bytes_done in _read_ahead(transactions, READ_AHEAD):
                run.write(batches, bytes_done)
        except RosterFileError as exc:
            failure = exc.code
            row = 0 if exc.code == "file.empty" else 1
            report.add([RowError(row, "file", exc.code, str(exc))])
        report.store(report_key(job_id))
    except BaseException:
        _mark_failed(job_id, "internal error")
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


def _mark_failed(job_id: int, message: str) -> None:
    try:
        with unit_of_work() as session:
            _untune_connection(session)
            session.execute(
                update(ImportJob)
                .where(ImportJob.id == job_id, ImportJob.status.in_(_UNFINISHED))
                .values(status=ImportStatus.FAILED, error=message, finished_at=now())
            )
    except Exception:  # the original error matters more
        log.exception("could not mark import job %s failed", job_id)


# Background imports started by the API. The thread owns its units of work.
_threads: dict[int, threading.Thread] = {}
_threads_lock = threading.Lock()


def _run_stored_upload(job_id: int, actor: Actor) -> None:
    try:
        with get_store().open(upload_key(job_id)) as source:
            run_import(job_id=job_id, actor=actor, source=source)
    except Exception:
        log.exception("roster import %s failed", job_id)
        _mark_failed(job_id, "internal error")
    finally:
        try:
            with unit_of_work() as session:
                _discard_upload(session, job_id)
        except Exception:  # housekeeping deletes it later (tidy_imports)
            log.exception("could not delete the upload of import job %s", job_id)
        with _threads_lock:
            _threads.pop(job_id, None)


def start_in_background(session: Session, *, job_id: int, actor: Actor) -> None:
    """Start importing the job's stored upload once the job row is committed."""

    def start() -> None:
        thread = threading.Thread(
            target=_run_stored_upload, args=(job_id, actor), name=f"roster-import-{job_id}"
        )
        with _threads_lock:
            _threads[job_id] = thread
        thread.start()

    on_commit(session, start)


def wait_for(job_id: int, timeout: float | None = None) -> None:
    """Block until a background import of this process has finished (tests, shutdown)."""
    with _threads_lock:
        thread = _threads.get(job_id)
    if thread is not None:
        thread.join(timeout)


def accept_upload(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    filename: str,
    chunks: Iterable[bytes],
    max_bytes: int,
) -> ImportJob:
    """Create a job for an uploaded roster file, store the file, and import it in the
    background once this unit of work commits. Too large a file is refused whole (413)."""
    job = create_job(session, actor=actor, org_id=org_id, filename=filename)
    key = upload_key(job.id)
    # The upload holds personal data in plain text. If the job row is never committed
    # (too large, a failed commit) nothing would point to it, so nothing would delete it.
    on_rollback(session, lambda: get_store().delete(key))

    def limited() -> Iterator[bytes]:
        seen = 0
        for chunk in chunks:
            seen += len(chunk)
            if seen > max_bytes:
                raise PayloadTooLarge(
                    MembersError.UPLOAD_TOO_LARGE,
                    f"the file is larger than {max_bytes} bytes",
                    {"max_bytes": max_bytes},
                )
            yield chunk

    size = get_store().put(key, limited())
    job.stored_path = key
    job.bytes_total = size
    session.flush()
    start_in_background(session, job_id=job.id, actor=actor)
    return job


def _discard_upload(session: Session, job_id: int) -> None:
    """Delete an API import's upload: it holds personal data in plain text and lives only
    while it is imported. An empty ``stored_path`` records that it is gone."""
    get_store().delete(upload_key(job_id))
    session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(stored_path="")
        .execution_options(synchronize_session=False)
    )


def tidy_imports(session: Session) -> int:
    """Housekeeping: fail the imports whose process died (no heartbeat for
    ``roster_import_stale_s``) with a clear reason and an audit row, and delete the uploads
    of every finished import still on disk. Returns how many jobs it touched."""
    at = now()
    last_sign = func.coalesce(ImportJob.heartbeat_at, ImportJob.created_at)
    stale = last_sign < at - timedelta(seconds=get_settings().roster_import_stale_s)
    touched = 0
    unfinished = select(ImportJob).where(ImportJob.status.in_(_UNFINISHED), stale)
    for job in list(session.scalars(unfinished.order_by(ImportJob.id))):
        # Compare-and-set: of several processes, one marks the job; a job that came back
        # to life (a fresh heartbeat) is left alone.
        marked = session.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status.in_(_UNFINISHED), stale)
            .values(status=ImportStatus.FAILED, error=INTERRUPTED, finished_at=at)
            .execution_options(synchronize_session=False)
        )
        if rowcount(marked) != 1:
            continue
        audit.record(
            session,
            actor=SYSTEM,
            action="members.roster_import",
            org_id=job.org_id,
            subject_type="import_job",
            subject_id=job.id,
            reason=INTERRUPTED,
            details={
                "filename": job.filename,
                "status": str(ImportStatus.FAILED),
                "rows_ok": job.rows_ok,
                "rows_failed": job.rows_failed,
            },
        )
        touched += 1
    leftovers = session.execute(
        select(ImportJob.id, ImportJob.stored_path).where(
            ImportJob.status.not_in(_UNFINISHED),
            ImportJob.stored_path.startswith("roster-imports/"),
        )
    ).all()
    for job_id, stored_path in leftovers:
        if stored_path == upload_key(job_id):  # an API upload (CLI imports name the user's file)
            _discard_upload(session, job_id)
            touched += 1
    return touched

"""Accepting an upload: the file is stored, its job created, and the import runs in a
background thread of this process once the request's unit of work commits.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterable, Iterator

from sqlalchemy.orm import Session

from gonghui.db import on_commit, on_rollback, unit_of_work
from gonghui.errors import PayloadTooLarge
from gonghui.members.errors import MembersError
from gonghui.members.models import ImportJob
from gonghui.members.roster_import.jobs import create_job, discard_upload, upload_key
from gonghui.members.roster_import.run import mark_failed, run_import
from gonghui.storage import get_store
from gonghui.tenancy import Actor

log = logging.getLogger("gonghui.members.import")


# Background imports started by the API. The thread owns its units of work.
_threads: dict[int, threading.Thread] = {}
_threads_lock = threading.Lock()


def _run_stored_upload(job_id: int, actor: Actor) -> None:
    try:
        with get_store().open(upload_key(job_id)) as source:
            run_import(job_id=job_id, actor=actor, source=source)
    except Exception:
        log.exception("roster import %s failed", job_id)
        mark_failed(job_id, "internal error")
    finally:
        try:
            with unit_of_work() as session:
                discard_upload(session, job_id)
        except Exception:  # housekeeping deletes it later (tidy_imports)
            log.exception("could not delete the upload of import job %s", job_id)
        with _threads_lock:
            _threads.pop(job_id, None)


def start_in_background(session: Session, *, job_id: int, actor: Actor) -> None:
    """Start importing the job's stored upload once the job row is committed."""

    def start() -> None:
        # In a copy of the uploading request's context: the import's logs and its audit
        # row carry that request's id.
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(_run_stored_upload, job_id, actor),
            name=f"roster-import-{job_id}",
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

"""Accepting an upload: the file is stored, its job created, and the import runs as a
task on the queue (:mod:`gonghui.tasks`) once the request's unit of work commits.

An import is not resumed: a worker that dies during one leaves its job to housekeeping,
which fails it with a clear reason (:mod:`gonghui.members.roster_import.recovery`), so the
task is tried once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from gonghui import tasks
from gonghui.db import on_rollback, unit_of_work
from gonghui.errors import PayloadTooLarge
from gonghui.members.errors import MembersError
from gonghui.members.models import ImportJob
from gonghui.members.roster_import.jobs import create_job, discard_upload, upload_key
from gonghui.members.roster_import.run import mark_failed, run_import
from gonghui.storage import get_store
from gonghui.tenancy import Actor

log = logging.getLogger("gonghui.members.import")

TASK = "members.roster_import"
# The largest roster a worker may spend on (a million rows take minutes).
TIME_LIMIT_S = 4 * 3600.0


@tasks.task(TASK, max_attempts=1, time_limit_s=TIME_LIMIT_S)
def import_stored_upload(job_id: int, actor: dict[str, Any]) -> None:
    """The task: import the job's stored upload as the staff member who uploaded it, then
    delete the upload (it holds personal data in plain text)."""
    try:
        with get_store().open(upload_key(job_id)) as source:
            run_import(job_id=job_id, actor=Actor.from_json(actor), source=source)
    except Exception:
        log.exception("roster import %s failed", job_id)
        mark_failed(job_id, "internal error")
    finally:
        try:
            with unit_of_work() as session:
                discard_upload(session, job_id)
        except Exception:  # housekeeping deletes it later (tidy_imports)
            log.exception("could not delete the upload of import job %s", job_id)


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
    tasks.defer(session, TASK, job_id=job.id, actor=actor.to_json())
    return job

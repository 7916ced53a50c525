"""Recovering from interrupted imports, and deleting uploads that outlived their import.

While it runs, an import refreshes its job's heartbeat with every commit; housekeeping
fails the unfinished jobs whose heartbeat stopped (their process died) and deletes
uploads, which hold personal data in plain text, once their import has ended.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.members.models import ImportJob, ImportStatus
from gonghui.members.roster_import.jobs import UNFINISHED, discard_upload, upload_key
from gonghui.settings import get_settings
from gonghui.tenancy import SYSTEM

INTERRUPTED = "interrupted: the server stopped during the import; upload the file again"


def tidy_imports(session: Session) -> int:
    """Housekeeping: fail the imports whose process died (no heartbeat for
    ``roster_import_stale_s``) with a clear reason and an audit row, and delete the uploads
    of every finished import still on disk. Returns how many jobs it touched."""
    at = now()
    last_sign = func.coalesce(ImportJob.heartbeat_at, ImportJob.created_at)
    stale = last_sign < at - timedelta(seconds=get_settings().roster_import_stale_s)
    touched = 0
    unfinished = select(ImportJob).where(ImportJob.status.in_(UNFINISHED), stale)
    for job in list(session.scalars(unfinished.order_by(ImportJob.id))):
        # Compare-and-set: of several processes, one marks the job; a job that came back
        # to life (a fresh heartbeat) is left alone.
        marked = session.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status.in_(UNFINISHED), stale)
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
            ImportJob.status.not_in(UNFINISHED),
            ImportJob.stored_path.startswith("roster-imports/"),
        )
    ).all()
    for job_id, stored_path in leftovers:
        if stored_path == upload_key(job_id):  # an API upload (CLI imports name the user's file)
            discard_upload(session, job_id)
            touched += 1
    return touched

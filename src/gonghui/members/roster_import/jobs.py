"""The import job: creating and reading it, and where its upload and error report live.

An API import's upload holds personal data in plain text and lives only while it is
imported (:func:`discard_upload`); the error report stays with the job.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gonghui.members.models import ImportJob, ImportStatus
from gonghui.orgs.models import Org
from gonghui.storage import get_store
from gonghui.tenancy import Actor, Permission, get_scoped, require_org, scoped, within

UNFINISHED = (ImportStatus.QUEUED, ImportStatus.RUNNING)


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


def discard_upload(session: Session, job_id: int) -> None:
    """Delete an API import's upload: it holds personal data in plain text and lives only
    while it is imported. An empty ``stored_path`` records that it is gone."""
    get_store().delete(upload_key(job_id))
    session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id)
        .values(stored_path="")
        .execution_options(synchronize_session=False)
    )

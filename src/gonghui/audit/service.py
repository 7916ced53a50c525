"""Writing and querying the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gonghui.audit.models import AuditEntry
from gonghui.observability import request_id_var
from gonghui.tenancy import Actor, Permission, org_ids_in_scope


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    org_id: int | None = None,
    subject_type: str | None = None,
    subject_id: Any = None,
    field: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one row; it commits or rolls back with the change it describes."""
    entry = AuditEntry(
        actor_user_id=actor.user_id if actor else None,
        org_id=org_id,
        action=action,
        subject_type=subject_type,
        subject_id=None if subject_id is None else str(subject_id),
        field=field,
        reason=reason,
        details=details,
        ip=actor.ip if actor else None,
        request_id=request_id_var.get(),
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditQuery:
    actor_user_id: int | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 50


def search(session: Session, *, actor: Actor, query: AuditQuery) -> list[AuditEntry]:
    """Entries about orgs in the auditor's subtree, newest first (keyset by id)."""
    stmt: Select[tuple[AuditEntry]] = select(AuditEntry)
    if not actor.is_platform_admin:
        stmt = stmt.where(AuditEntry.org_id.in_(org_ids_in_scope(actor, Permission.AUDIT_READ)))
    if query.actor_user_id is not None:
        stmt = stmt.where(AuditEntry.actor_user_id == query.actor_user_id)
    if query.subject_type:
        stmt = stmt.where(AuditEntry.subject_type == query.subject_type)
    if query.subject_id:
        stmt = stmt.where(AuditEntry.subject_id == query.subject_id)
    if query.action:
        stmt = stmt.where(AuditEntry.action.startswith(query.action))
    if query.since:
        stmt = stmt.where(AuditEntry.at >= query.since)
    if query.until:
        stmt = stmt.where(AuditEntry.at < query.until)
    if query.before_id:
        stmt = stmt.where(AuditEntry.id < query.before_id)
    stmt = stmt.order_by(AuditEntry.id.desc()).limit(min(max(query.limit, 1), 500))
    return list(session.scalars(stmt))

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from gonghui.audit import service
from gonghui.audit.schemas import AuditEntryRead, AuditPage
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.errors import PermissionDenied
from gonghui.tenancy import Permission
from gonghui.types import Id

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def search_audit_log(
    staff: CurrentStaff,
    session: SessionDep,
    actor_user_id: Id | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Id | None = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> AuditPage:
    if not (staff.is_platform_admin or staff.roots(Permission.AUDIT_READ)):
        raise PermissionDenied("audit.not_auditor", "auditors and admins only")
    entries = service.search(
        session,
        actor=staff,
        query=service.AuditQuery(
            actor_user_id=actor_user_id,
            subject_type=subject_type,
            subject_id=subject_id,
            action=action,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit,
        ),
    )
    return AuditPage(
        items=[AuditEntryRead.model_validate(e) for e in entries],
        next_before_id=entries[-1].id if len(entries) == limit else None,
    )

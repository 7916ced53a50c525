"""HTTP for rosters, imports, verification, reviews, transfers and the member profile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import Response, StreamingResponse

from gonghui.bodylimit import MULTIPART_FRAMING, max_body, upload_limit
from gonghui.db import unit_of_work
from gonghui.deps import CurrentPrincipal, CurrentStaff, CurrentUser, SessionDep
from gonghui.errors import NotFound
from gonghui.members import profile as profiles
from gonghui.members import review, roster, roster_import, verification
from gonghui.members.errors import MembersError
from gonghui.members.models import ImportJob, ReviewStatus
from gonghui.members.schemas import (
    ApproveRequest,
    ImportJobRead,
    MemberProfileRead,
    MembershipRead,
    RejectRequest,
    ReviewPageRead,
    ReviewRead,
    RosterEntryRead,
    RosterPageRead,
    TagsUpdate,
    TransferRequest,
    UnmaskRead,
    UnmaskRequest,
    VerificationFlagRead,
    VerifyRequest,
)
from gonghui.settings import get_settings
from gonghui.storage import download_response
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1", tags=["members"])

_CHUNK = 1 << 16


def _job_read(job: ImportJob) -> ImportJobRead:
    read = ImportJobRead.model_validate(job)
    read.has_error_report = job.error_report_path is not None
    return read


def _chunks(upload: UploadFile) -> Iterator[bytes]:
    while chunk := upload.file.read(_CHUNK):
        yield chunk


@router.post("/orgs/{org_id}/roster/imports", status_code=status.HTTP_202_ACCEPTED)
@max_body(upload_limit)
def create_import(
    org_id: Id, file: Annotated[UploadFile, File()], staff: CurrentStaff, session: SessionDep
) -> ImportJobRead:
    """Upload a roster (CSV in UTF-8/GBK, or XLSX); it is imported in the background."""
    job = roster_import.accept_upload(
        session,
        actor=staff,
        org_id=org_id,
        filename=file.filename or "roster",
        chunks=_chunks(file),
        max_bytes=get_settings().upload_max_bytes,
    )
    return _job_read(job)


@router.get("/orgs/{org_id}/roster/imports")
def list_imports(
    org_id: Id, staff: CurrentStaff, session: SessionDep, limit: Count = 50
) -> list[ImportJobRead]:
    """Recent imports of the org's subtree, newest first (the console's import list)."""
    jobs = roster_import.list_jobs(session, actor=staff, org_id=org_id, limit=limit)
    return [_job_read(job) for job in jobs]


@router.get("/roster/imports/{job_id}")
def get_import(job_id: Id, staff: CurrentStaff, session: SessionDep) -> ImportJobRead:
    return _job_read(roster_import.get_job(session, actor=staff, job_id=job_id))


@router.get("/roster/imports/{job_id}/errors", response_class=StreamingResponse)
def get_import_errors(job_id: Id, staff: CurrentStaff, session: SessionDep) -> Response:
    """The error report: CSV with row, field, code, reason (never the values)."""
    job = roster_import.get_job(session, actor=staff, job_id=job_id)
    if job.error_report_path is None:
        raise NotFound(MembersError.REPORT_NOT_READY, "the import has not finished yet")
    return download_response(
        job.error_report_path,
        filename=f"roster-import-{job.id}-errors.csv",
        content_type="text/csv; charset=utf-8",
    )


@router.get("/orgs/{org_id}/roster")
def list_roster(
    org_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    cursor: str | None = None,
    limit: Count = 50,
    id_number: str | None = None,
    phone: str | None = None,
) -> RosterPageRead:
    """The roster of the org's subtree, masked; ``id_number`` / ``phone`` search exactly."""
    page = roster.list_roster(
        session,
        actor=staff,
        org_id=org_id,
        cursor=cursor,
        limit=limit,
        id_number=id_number,
        phone=phone,
    )
    return RosterPageRead(
        items=[RosterEntryRead.model_validate(v) for v in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/roster/{entry_id}")
def get_roster_entry(entry_id: Id, staff: CurrentStaff, session: SessionDep) -> RosterEntryRead:
    return RosterEntryRead.model_validate(roster.get_view(session, actor=staff, entry_id=entry_id))


@router.post("/roster/{entry_id}/unmask")
def unmask(
    entry_id: Id, body: UnmaskRequest, staff: CurrentStaff, session: SessionDep
) -> UnmaskRead:
    """The plain value of one field; written to the audit log with the reason."""
    value = roster.unmask(
        session, actor=staff, entry_id=entry_id, field=body.field, reason=body.reason
    )
    return UnmaskRead(entry_id=entry_id, field=body.field, value=value)


@router.put("/roster/{entry_id}/tags")
def set_roster_tags(
    entry_id: Id, body: TagsUpdate, staff: CurrentStaff, session: SessionDep
) -> RosterEntryRead:
    """Replace the person's tags (activities may be limited to members with some)."""
    entry = roster.set_tags(session, actor=staff, entry_id=entry_id, tags=body.tags)
    return RosterEntryRead.model_validate(entry)


@router.post("/roster/{entry_id}/transfer")
def transfer(
    entry_id: Id, body: TransferRequest, staff: CurrentStaff, session: SessionDep
) -> RosterEntryRead:
    entry = roster.transfer(
        session, actor=staff, entry_id=entry_id, to_org_id=body.to_org_id, reason=body.reason
    )
    return RosterEntryRead.model_validate(entry)


@router.post("/members/verify", status_code=status.HTTP_201_CREATED)
def verify_membership(
    body: VerifyRequest, user: CurrentUser, session: SessionDep
) -> MembershipRead:
    """Match name + ID number against the rosters; success makes the caller a member.
    Every mismatch answers ``members.verification_failed``; attempts are limited per
    account and per ID number (429)."""
    assert user.user_id is not None
    membership = verification.verify_member(
        session, user_id=user.user_id, name=body.name, id_number=body.id_number, ip=user.ip
    )
    session.flush()
    return MembershipRead.model_validate(membership)


@router.get("/members/verification-flags")
def list_verification_flags(
    staff: CurrentStaff, session: SessionDep, include_resolved: bool = False
) -> list[VerificationFlagRead]:
    """ID numbers on the subtree's rosters that several accounts tried to verify with
    (verification by them is locked until the flag is resolved)."""
    flags = verification.list_flags(session, actor=staff, open_only=not include_resolved)
    return [VerificationFlagRead.model_validate(f) for f in flags]


@router.post("/members/verification-flags/{flag_id}/resolve")
def resolve_verification_flag(
    flag_id: Id, staff: CurrentStaff, session: SessionDep
) -> VerificationFlagRead:
    flag = verification.resolve_flag(session, actor=staff, flag_id=flag_id)
    return VerificationFlagRead.model_validate(flag)


@router.get("/members/me")
def my_profile(principal: CurrentPrincipal, session: SessionDep) -> MemberProfileRead:
    return MemberProfileRead.model_validate(profiles.profile(session, user_id=principal.user_id))


@router.post("/members/verification-requests", status_code=status.HTTP_201_CREATED)
@max_body(review.PROOF_MAX_BYTES + MULTIPART_FRAMING)
def request_review(
    user: CurrentUser,
    session: SessionDep,
    name: Annotated[str, Form(min_length=1, max_length=64)],
    id_number: Annotated[str, Form(min_length=1, max_length=32)],
    org_id: Annotated[Id, Form()],
    proof: Annotated[UploadFile, File()],
    note: Annotated[str | None, Form(max_length=500)] = None,
) -> ReviewRead:
    """Ask an operator of ``org_id`` to review a failed verification, with a proof image
    (JPEG, PNG or WebP, judged from its bytes)."""
    assert user.user_id is not None
    req = review.create_request(
        session,
        user_id=user.user_id,
        org_id=org_id,
        name=name,
        id_number=id_number,
        note=note,
        proof=proof.file,
        ip=user.ip,
    )
    return ReviewRead.model_validate(review.view(req))


@router.get("/members/verification-requests")
def list_reviews(
    staff: CurrentStaff,
    session: SessionDep,
    status: ReviewStatus | None = ReviewStatus.PENDING,
    after_id: Id | None = None,
    limit: Count = 50,
) -> ReviewPageRead:
    items = review.list_requests(
        session, actor=staff, status=status, after_id=after_id, limit=limit
    )
    next_after = items[-1].id if len(items) == min(max(limit, 1), 200) else None
    return ReviewPageRead(
        items=[ReviewRead.model_validate(review.view(r)) for r in items],
        next_after_id=next_after,
    )


@router.get("/members/verification-requests/{request_id}")
def get_review(request_id: Id, staff: CurrentStaff, session: SessionDep) -> ReviewRead:
    req = review.get_request(session, actor=staff, request_id=request_id)
    return ReviewRead.model_validate(review.view(req))


@router.get("/members/verification-requests/{request_id}/proof", response_class=Response)
def get_review_proof(request_id: Id, staff: CurrentStaff) -> Response:
    """The proof image. Viewing it writes an audit row, so this read commits its own unit
    of work."""
    with unit_of_work() as session:
        image, content_type = review.open_proof(session, actor=staff, request_id=request_id)
    return Response(
        image,
        media_type=content_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


@router.post("/members/verification-requests/{request_id}/approve")
def approve_review(
    request_id: Id, body: ApproveRequest, staff: CurrentStaff, session: SessionDep
) -> ReviewRead:
    req = review.approve(session, actor=staff, request_id=request_id, note=body.note)
    return ReviewRead.model_validate(review.view(req))


@router.post("/members/verification-requests/{request_id}/reject")
def reject_review(
    request_id: Id, body: RejectRequest, staff: CurrentStaff, session: SessionDep
) -> ReviewRead:
    req = review.reject(session, actor=staff, request_id=request_id, note=body.note)
    return ReviewRead.model_validate(review.view(req))

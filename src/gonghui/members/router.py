"""HTTP for rosters, imports, verification, reviews, transfers and the member profile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from gonghui.bodylimit import MULTIPART_FRAMING, max_body, upload_limit
from gonghui.db import unit_of_work
from gonghui.deps import CurrentPrincipal, CurrentStaff, CurrentUser, SessionDep
from gonghui.errors import NotFound
from gonghui.members import (
    decisions,
    joining,
    moving,
    requests,
    review,
    roster,
    roster_import,
    verification,
)
from gonghui.members import profile as profiles
from gonghui.members.errors import MembersError
from gonghui.members.models import (
    ImportJob,
    MembershipRequest,
    RequestKind,
    RequestStatus,
    ReviewStatus,
)
from gonghui.members.schemas import (
    ApproveRequest,
    ImportJobRead,
    JoinSettings,
    JoinSettingsRead,
    LeaveAsk,
    MemberProfileRead,
    MembershipRead,
    MembershipRequestPageRead,
    MembershipRequestRead,
    RejectRequest,
    ReviewPageRead,
    ReviewRead,
    RosterEntryRead,
    RosterPageRead,
    TagsUpdate,
    TransferAsk,
    TransferRequest,
    UnionRead,
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
    id_number: Annotated[str | None, Query(max_length=32)] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
) -> RosterPageRead:
    """The roster of the org's subtree, masked; ``id_number`` / ``phone`` / ``name``
    search exactly."""
    page = roster.list_roster(
        session,
        actor=staff,
        org_id=org_id,
        cursor=cursor,
        limit=limit,
        id_number=id_number,
        phone=phone,
        name=name,
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


# -- joining, moving and leaving (a member's own requests; the staff's queue) ---------------


@router.get("/members/areas")
def list_areas(user: CurrentUser, session: SessionDep) -> list[UnionRead]:
    """Cities and districts to search for a union within."""
    return [UnionRead.model_validate(o) for o in joining.areas(session)]


@router.get("/members/unions")
def search_unions(
    area_id: Id,
    user: CurrentUser,
    session: SessionDep,
    q: Annotated[str, Query(max_length=50)] = "",
) -> list[UnionRead]:
    """Grassroots unions within the area accepting applications, by name (at most 20;
    searches are limited per account)."""
    assert user.user_id is not None
    found = joining.search_unions(
        session, user_id=user.user_id, area_id=area_id, query=q, ip=user.ip
    )
    return [UnionRead.model_validate(o) for o in found]


def _request_read(session: Session, req: MembershipRequest) -> MembershipRequestRead:
    return MembershipRequestRead.model_validate(requests.view(session, req))


@router.post("/members/applications", status_code=status.HTTP_201_CREATED)
@max_body(review.PROOF_MAX_BYTES + MULTIPART_FRAMING)
def apply_to_join(
    user: CurrentUser,
    session: SessionDep,
    org_id: Annotated[Id, Form()],
    name: Annotated[str, Form(min_length=1, max_length=64)],
    id_number: Annotated[str, Form(min_length=1, max_length=32)],
    employer: Annotated[str, Form(min_length=1, max_length=200)],
    job: Annotated[str, Form(min_length=1, max_length=100)],
    proof: Annotated[UploadFile, File()],
    phone: Annotated[str | None, Form(max_length=20)] = None,
    note: Annotated[str | None, Form(max_length=500)] = None,
) -> MembershipRequestRead:
    """Apply to join a grassroots union (one open request per account), with a proof image.
    An ID number already on a roster answers ``members.verification_failed``, as
    verification does; applying counts against verification's limits."""
    assert user.user_id is not None
    req = joining.apply(
        session,
        user_id=user.user_id,
        org_id=org_id,
        name=name,
        id_number=id_number,
        phone=phone,
        employer=employer,
        job=job,
        note=note,
        proof=proof.file,
        ip=user.ip,
    )
    return _request_read(session, req)


@router.post("/members/me/transfer-requests", status_code=status.HTTP_201_CREATED)
def ask_transfer(
    body: TransferAsk, user: CurrentUser, session: SessionDep
) -> MembershipRequestRead:
    """Ask to move to another union; its staff accept or reject."""
    assert user.user_id is not None
    req = moving.request_transfer(
        session, user_id=user.user_id, to_org_id=body.to_org_id, note=body.note, ip=user.ip
    )
    return _request_read(session, req)


@router.post("/members/me/leave-requests", status_code=status.HTTP_201_CREATED)
def ask_leave(body: LeaveAsk, user: CurrentUser, session: SessionDep) -> MembershipRequestRead:
    """Ask to leave the union; its staff confirm."""
    assert user.user_id is not None
    req = moving.request_leave(session, user_id=user.user_id, note=body.note, ip=user.ip)
    return _request_read(session, req)


@router.get("/members/me/requests")
def my_requests(user: CurrentUser, session: SessionDep) -> list[MembershipRequestRead]:
    """The caller's applications, transfers and leaving, newest first, with staff's notes."""
    assert user.user_id is not None
    return [_request_read(session, r) for r in requests.history(session, user_id=user.user_id)]


@router.get("/members/requests")
def list_membership_requests(
    staff: CurrentStaff,
    session: SessionDep,
    kind: RequestKind | None = None,
    status: RequestStatus | None = RequestStatus.PENDING,
    after_id: Id | None = None,
    limit: Count = 50,
) -> MembershipRequestPageRead:
    """Requests for the orgs of the caller's subtree (members.manage), oldest first."""
    items = requests.list_requests(
        session, actor=staff, kind=kind, status=status, after_id=after_id, limit=limit
    )
    next_after = items[-1].id if len(items) == min(max(limit, 1), requests.MAX_PAGE) else None
    return MembershipRequestPageRead(
        items=[_request_read(session, r) for r in items], next_after_id=next_after
    )


@router.get("/members/requests/{request_id}")
def get_membership_request(
    request_id: Id, staff: CurrentStaff, session: SessionDep
) -> MembershipRequestRead:
    return _request_read(session, requests.get_request(session, actor=staff, request_id=request_id))


@router.get("/members/requests/{request_id}/proof", response_class=Response)
def get_membership_request_proof(request_id: Id, staff: CurrentStaff) -> Response:
    """A join application's proof image; viewing it is audited."""
    with unit_of_work() as session:
        image, content_type = requests.open_proof(session, actor=staff, request_id=request_id)
    return Response(
        image,
        media_type=content_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )


@router.post("/members/requests/{request_id}/approve")
def approve_membership_request(
    request_id: Id, body: ApproveRequest, staff: CurrentStaff, session: SessionDep
) -> MembershipRequestRead:
    """Approve: a join makes the applicant a member on the roster, a transfer moves them
    here, a leaving ends their membership."""
    req = decisions.approve(session, actor=staff, request_id=request_id, note=body.note)
    return _request_read(session, req)


@router.post("/members/requests/{request_id}/reject")
def reject_membership_request(
    request_id: Id, body: RejectRequest, staff: CurrentStaff, session: SessionDep
) -> MembershipRequestRead:
    """Reject with a note the member sees."""
    req = decisions.reject(session, actor=staff, request_id=request_id, note=body.note)
    return _request_read(session, req)


@router.post("/members/me/requests/{request_id}/withdraw")
def withdraw_my_request(
    request_id: Id, user: CurrentUser, session: SessionDep
) -> MembershipRequestRead:
    """Take back one's own pending request."""
    assert user.user_id is not None
    req = requests.withdraw(session, user_id=user.user_id, request_id=request_id)
    return _request_read(session, req)


@router.put("/orgs/{org_id}/join-settings")
def set_join_settings(
    org_id: Id, body: JoinSettings, staff: CurrentStaff, session: SessionDep
) -> JoinSettingsRead:
    """Open or close a grassroots union to applications to join (members.manage)."""
    org = joining.set_open_to_applications(
        session, actor=staff, org_id=org_id, accepts=body.accepts_applications
    )
    return JoinSettingsRead.model_validate(org)

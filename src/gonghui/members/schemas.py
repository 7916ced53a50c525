from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from gonghui.pii import PiiField
from gonghui.types import Id


class ImportJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    created_by: int | None
    filename: str
    status: str
    bytes_total: int
    bytes_done: int
    rows_done: int
    rows_ok: int
    rows_failed: int
    rows_created: int
    rows_updated: int
    has_error_report: bool = False
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RosterEntryRead(BaseModel):
    """A roster entry; name, ID number and phone are masked."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    org_code: str
    org_name: str
    name: str
    id_number: str
    phone: str | None
    member_no: str | None
    join_date: date | None
    tags: list[str]
    verified_user_id: int | None
    created_at: datetime
    updated_at: datetime


class TagsUpdate(BaseModel):
    tags: list[str] = Field(max_length=20)


class RosterPageRead(BaseModel):
    items: list[RosterEntryRead]
    next_cursor: str | None


class UnmaskRequest(BaseModel):
    field: PiiField
    reason: str = Field(min_length=2, max_length=500)


class UnmaskRead(BaseModel):
    entry_id: int
    field: PiiField
    value: str | None


class TransferRequest(BaseModel):
    to_org_id: Id
    reason: str | None = Field(default=None, max_length=500)


class VerifyRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=1, max_length=32)


class VerificationFlagRead(BaseModel):
    """An ID number tried from several accounts (masked), on a roster entry of ``org_id``."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    roster_entry_id: int
    id_number: str
    accounts: int
    created_at: datetime
    resolved_at: datetime | None


class MembershipRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    org_id: int
    roster_entry_id: int
    status: str
    verified_via: str
    verified_at: datetime


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    org_id: int
    name: str
    id_number: str
    failure_code: str
    note: str | None
    status: str
    has_proof: bool
    decided_by: int | None
    decided_at: datetime | None
    decision_note: str | None
    created_at: datetime


class ReviewPageRead(BaseModel):
    items: list[ReviewRead]
    next_after_id: int | None


class ApproveRequest(BaseModel):
    note: str | None = Field(default=None, max_length=500)


class RejectRequest(BaseModel):
    note: str = Field(min_length=1, max_length=500)


class OrgStepRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str


class ReviewBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    failure_code: str
    decision_note: str | None
    created_at: datetime
    decided_at: datetime | None


class MemberProfileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    status: str
    membership_id: int | None
    org: OrgStepRead | None
    org_path: list[OrgStepRead]
    name: str | None
    id_number: str | None
    member_no: str | None
    join_date: date | None
    verified_at: datetime | None
    verified_via: str | None
    review: ReviewBrief | None


class UnionRead(BaseModel):
    """A union a worker may choose (or an area to search within): public facts only."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    level: str


class MembershipRequestRead(BaseModel):
    """A request to join, move or leave, personal data masked."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    user_id: int
    org_id: int
    org_name: str
    from_org_id: int | None
    from_org_name: str | None
    roster_entry_id: int | None
    name: str | None
    id_number: str | None
    phone: str | None
    employer: str | None
    job: str | None
    note: str | None
    has_proof: bool
    decided_at: datetime | None
    decision_note: str | None
    created_at: datetime


class MembershipRequestPageRead(BaseModel):
    items: list[MembershipRequestRead]
    next_after_id: int | None


class TransferAsk(BaseModel):
    to_org_id: Id
    note: str | None = Field(default=None, max_length=500)


class LeaveAsk(BaseModel):
    note: str | None = Field(default=None, max_length=500)


class JoinSettings(BaseModel):
    """Whether a union takes applications to join from the H5."""

    model_config = ConfigDict(from_attributes=True)

    accepts_applications: bool


class JoinSettingsRead(JoinSettings):
    id: int
    code: str
    name: str

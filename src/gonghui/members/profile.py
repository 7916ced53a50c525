"""What a member sees of their own membership."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.members.models import Membership, RosterEntry, VerificationRequest
from gonghui.members.review import latest_for_user
from gonghui.orgs.models import Org
from gonghui.pii import PiiField, masked


@dataclass(frozen=True)
class OrgStep:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class MemberProfile:
    status: str  # "verified", "suspended" or "unverified"
    membership_id: int | None
    org: OrgStep | None
    org_path: list[OrgStep]  # from the root down to the member's org
    name: str | None
    id_number: str | None
    member_no: str | None
    join_date: date | None
    verified_at: datetime | None
    verified_via: str | None
    review: VerificationRequest | None


def profile(session: Session, *, user_id: int) -> MemberProfile:
    review = latest_for_user(session, user_id=user_id)
    row = session.execute(
        select(Membership, RosterEntry, Org)
        .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
        .join(Org, Org.id == Membership.org_id)
        .where(Membership.user_id == user_id)
    ).first()
    if row is None:
        return MemberProfile(
            "unverified", None, None, [], None, None, None, None, None, None, review
        )
    membership, entry, org = row
    ancestor_ids = [int(p) for p in org.path.strip("/").split("/") if p]
    by_id = {o.id: o for o in session.scalars(select(Org).where(Org.id.in_(ancestor_ids)))}
    path = [OrgStep(i, by_id[i].code, by_id[i].name) for i in ancestor_ids if i in by_id]
    return MemberProfile(
        status=str(membership.status),
        membership_id=membership.id,
        org=OrgStep(org.id, org.code, org.name),
        org_path=path,
        name=masked(PiiField.NAME, entry.name_enc),
        id_number=masked(PiiField.ID_NUMBER, entry.id_number_enc),
        member_no=entry.member_no,
        join_date=entry.join_date,
        verified_at=membership.verified_at,
        verified_via=membership.verified_via,
        review=review,
    )

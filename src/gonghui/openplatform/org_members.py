"""The open API's ``org:members:read``: a page of the roster of an org in the client's
subtree, masked as staff see it; with ``org:members:unmask`` (a second staff approval, by
someone who may unmask) the clear name, ID number and phone, each value read written to
the audit log as a staff member's unmasking is.

Both read through the roster's own services with the rights of the staff member who
approved the scope (:mod:`.approvals`), narrowed to the client's subtree: a grant never
exceeds its approver's rights.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from gonghui.errors import NotFound
from gonghui.members import roster
from gonghui.openplatform import approvals, identity
from gonghui.orgs.models import Org
from gonghui.pii import PiiField

PAGE_MAX = 100


@dataclass(frozen=True)
class OpenMember:
    """A person on the roster as a client sees them; ``sub`` is the pairwise subject of
    their account (the one the client's sign-in gives) once they verified."""

    id: int
    org_code: str
    org_name: str
    name: str
    id_number: str
    phone: str | None
    member_no: str | None
    join_date: date | None
    tags: list[str]
    sub: str | None


@dataclass(frozen=True)
class OpenMemberPage:
    items: list[OpenMember]
    next_cursor: str | None


def members_page(
    session: Session,
    *,
    client_pk: int,
    org_id: int,
    cursor: str | None = None,
    limit: int = 50,
    unmasked: bool = False,
) -> OpenMemberPage:
    """The people on the roster of ``org_id``'s subtree, by id; not found outside the
    client's subtree. ``unmasked`` needs the unmask approval standing."""
    acting = approvals.acting_for(session, client_pk=client_pk, scope="org:members:read")
    org = session.get(Org, org_id)
    if org is None or not acting.client.holds(org.path):
        raise NotFound("org.not_found", f"org {org_id} not found")
    page = roster.list_roster(
        session,
        actor=acting.actor,
        org_id=org.id,
        cursor=cursor,
        limit=min(max(limit, 1), PAGE_MAX),
    )
    clear: dict[int, dict[PiiField, str | None]] = {}
    if unmasked and page.items:
        unmasker = approvals.acting_for(session, client_pk=client_pk, scope="org:members:unmask")
        clear = roster.unmask_entries(
            session,
            actor=unmasker.actor,
            entry_ids=[v.id for v in page.items],
            reason="open API org:members:read, unmasked",
            details={"client_id": acting.client.client_id},
        )
    client_id = acting.client.client_id
    items = []
    for v in page.items:
        plain = clear.get(v.id)
        items.append(
            OpenMember(
                id=v.id,
                org_code=v.org_code,
                org_name=v.org_name,
                name=(plain[PiiField.NAME] or "") if plain else v.name,
                id_number=(plain[PiiField.ID_NUMBER] or "") if plain else v.id_number,
                phone=plain[PiiField.PHONE] if plain else v.phone,
                member_no=v.member_no,
                join_date=v.join_date,
                tags=v.tags,
                sub=None
                if v.verified_user_id is None
                else identity.pairwise_subject(client_id, v.verified_user_id),
            )
        )
    return OpenMemberPage(items, page.next_cursor)

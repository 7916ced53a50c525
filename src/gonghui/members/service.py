"""Roster entries and verification: the rules that make a signed-in user a union member.

A roster entry is one person on one org's roster, found by the blind index of their ID
number. Verification matches a user's name and ID number against it; the unique
constraints on ``Membership`` (one per user, one per roster entry) decide races.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui import hooks
from gonghui.accounts import principal as principals
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, NotFound, field_error
from gonghui.members.errors import MembersError
from gonghui.members.idnumber import IdNumberError, validate
from gonghui.members.models import Membership, MembershipStatus, RosterEntry
from gonghui.pii import PiiField, blind_index, narrow_key, seal
from gonghui.tenancy import Actor, Permission, require_org


def find_roster_entry(session: Session, *, id_number: str) -> RosterEntry | None:
    """The person's roster entry, also when they have left (``left_at`` set): an ID number
    has one entry, kept for its history and taken up again if they rejoin."""
    return session.scalar(
        select(RosterEntry).where(
            RosterEntry.id_number_hash == blind_index(PiiField.ID_NUMBER, id_number)
        )
    )


def on_roster(entry: RosterEntry | None) -> bool:
    """Whether the entry puts its person on a roster now (they have not left)."""
    return entry is not None and entry.left_at is None


def claim_membership(session: Session, *, user_id: int, entry: RosterEntry, via: str) -> Membership:
    """Make ``user_id`` the verified member holding ``entry``. An account that left keeps
    its membership row (its wallet, draws and orders refer to it), which takes the new
    entry; an entry held by another account's row is not taken over."""
    mine = session.scalar(select(Membership).where(Membership.user_id == user_id))
    holder = session.scalar(select(Membership).where(Membership.roster_entry_id == entry.id))
    if mine is not None and mine.status != MembershipStatus.LEFT:
        raise Conflict(MembersError.ALREADY_VERIFIED, "you are already a verified member")
    if holder is not None and holder is not mine:
        raise Conflict(
            MembersError.CLAIMED_BY_OTHER,
            "this roster entry is already verified by another account",
        )
    if mine is not None:
        mine.roster_entry_id, mine.org_id = entry.id, entry.org_id
        mine.status, mine.verified_via, mine.verified_at = MembershipStatus.VERIFIED, via, now()
        mine.tags = list(entry.tags or ())
        session.flush()
        return mine
    membership = Membership(
        user_id=user_id,
        roster_entry_id=entry.id,
        org_id=entry.org_id,
        tags=list(entry.tags or ()),
        verified_via=via,
    )
    try:
        with session.begin_nested():
            session.add(membership)
    except IntegrityError as exc:
        raise Conflict(
            MembersError.CLAIMED_BY_OTHER,
            "this roster entry is already verified by another account",
        ) from exc
    return membership


def add_roster_entry(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    name: str,
    id_number: str,
    phone: str | None = None,
    member_no: str | None = None,
    join_date: date | None = None,
) -> RosterEntry:
    """Add one person to ``org_id``'s roster, or update them if their ID number is known."""
    org = require_org(session, actor, Permission.MEMBERS_MANAGE, org_id)
    try:
        number = validate(id_number)
    except IdNumberError as exc:
        raise InvalidInput(
            MembersError.INVALID_ROW, str(exc), [field_error("id_number", exc.code, str(exc))]
        ) from exc
    entry = find_roster_entry(session, id_number=number)
    if entry is None:
        entry = RosterEntry(
            org_id=org.id,
            id_number_hash=blind_index(PiiField.ID_NUMBER, number),
            id_number_enc=seal(PiiField.ID_NUMBER, number),
        )
        session.add(entry)
    else:
        # Updating someone on another union's roster moves them: that is a transfer, which
        # needs rights over the entry's current org too.
        require_org(session, actor, Permission.MEMBERS_MANAGE, entry.org_id)
        if entry.org_id != org.id:
            # The membership's org is kept equal to the roster entry's.
            session.execute(
                update(Membership)
                .where(Membership.roster_entry_id == entry.id)
                .values(org_id=org.id)
                .execution_options(synchronize_session="fetch")
            )
            principals.changed(session, everyone=True)
        entry.org_id = org.id
    entry.left_at = None  # someone who had left is on the roster again
    entry.name_hash = blind_index(PiiField.NAME, name)
    entry.name_enc = seal(PiiField.NAME, name)
    entry.phone_hash = blind_index(PiiField.PHONE, phone) if phone else None
    entry.phone_key = narrow_key(entry.phone_hash) if entry.phone_hash else None
    entry.phone_enc = seal(PiiField.PHONE, phone) if phone else None
    entry.member_no = member_no
    entry.join_date = join_date
    entry.updated_at = now()
    session.flush()
    return entry


def valid_id_number(raw: str) -> str:
    """``raw`` as a valid resident ID number, or the field error saying what is wrong."""
    try:
        return validate(raw)
    except IdNumberError as exc:
        raise InvalidInput(
            exc.code, str(exc), [field_error("id_number", exc.code, str(exc))]
        ) from exc


def verify(session: Session, *, user_id: int, name: str, id_number: str) -> Membership:
    """Make ``user_id`` a verified member of the org whose roster lists this person.

    The match itself, without limits: everything a member can reach goes through
    :func:`gonghui.members.verification.verify_member` (fixtures and seeding call this)."""
    number = valid_id_number(id_number)
    existing = session.scalar(select(Membership).where(Membership.user_id == user_id))
    if existing is not None and existing.status == MembershipStatus.VERIFIED:
        raise Conflict(MembersError.ALREADY_VERIFIED, "you are already a verified member")
    entry = find_roster_entry(session, id_number=number)
    if entry is None or not on_roster(entry):
        raise NotFound(
            MembersError.NOT_IN_ROSTER,
            "this ID number is not on any union roster; ask your union or request a review",
        )
    if entry.name_hash != blind_index(PiiField.NAME, name):
        raise InvalidInput(
            MembersError.NAME_MISMATCH,
            "the name does not match the roster for this ID number",
            [field_error("name", MembersError.NAME_MISMATCH, "does not match the roster")],
        )
    membership = claim_membership(session, user_id=user_id, entry=entry, via="roster")
    audit.record(
        session,
        actor=Actor(user_id=user_id),
        action="members.verify",
        org_id=entry.org_id,
        subject_type="roster_entry",
        subject_id=entry.id,
    )
    session.flush()
    hooks.emit(
        session,
        org_id=entry.org_id,
        event=hooks.OrgEvent.VERIFICATION_APPROVED,
        payload={"membership_id": membership.id, "user_id": user_id, "via": "roster"},
    )
    principals.changed(session, user_id=user_id)
    return membership

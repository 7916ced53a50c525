"""Self-service verification: the one way a member's name and ID number are matched against
the rosters, whichever page or API asks (the API, the H5, a manual-review request).

Without limits the match is an oracle: anyone signed in could learn who is on a roster and
then claim that person's membership. So every attempt, before the roster is read:

- counts against its account (``ATTEMPTS_PER_ACCOUNT`` a day) and its ID number
  (``ATTEMPTS_PER_ID_NUMBER`` a day, whoever tries it), in :mod:`gonghui.ratelimit`, so a
  refused attempt still counts;
- counts the accounts that tried the ID number: once more than ``ACCOUNTS_PER_ID_NUMBER``
  have, the number is locked for ``LOCK_S`` and, when a roster lists it, flagged to the
  staff of that roster's org (:class:`VerificationFlag`; resolving the flag lifts the lock);
- is written to the audit log with its outcome and the masked ID number.

Every mismatch ("not on any roster", "the name differs") gets the same answer, and a roster
entry already verified by another account is not taken over: the attempt becomes a manual
review request for that entry's union, and the member is told so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui import ratelimit
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import on_commit
from gonghui.errors import Conflict, DomainError, InvalidInput, RateLimited
from gonghui.members import service
from gonghui.members.errors import MembersError
from gonghui.members.models import (
    Membership,
    MembershipStatus,
    RosterEntry,
    VerificationFlag,
    VerificationRequest,
)
from gonghui.pii import PiiField, blind_index, mask, masked, seal
from gonghui.tenancy import Actor, Permission, get_scoped, scoped

DAY_S = 24 * 3600
ATTEMPTS_PER_ACCOUNT = 10
ATTEMPTS_PER_ID_NUMBER = 10
ACCOUNTS_PER_ID_NUMBER = 2
LOCK_S = 30 * DAY_S

FAILED_MESSAGE = "the name or ID number does not match the union's roster"


class Outcome(StrEnum):
    """What an attempt came to, as the audit log records it."""

    VERIFIED = "verified"
    NOT_IN_ROSTER = "not_in_roster"
    NAME_MISMATCH = "name_mismatch"
    SENT_TO_REVIEW = "sent_to_review"
    ALREADY_VERIFIED = "already_verified"
    INVALID_ID_NUMBER = "invalid_id_number"
    THROTTLED = "throttled"
    LOCKED = "locked"
    REVIEW_REQUESTED = "review_requested"
    REVIEW_NOT_NEEDED = "review_not_needed"
    JOIN_APPLIED = "join_applied"
    JOIN_REFUSED_ON_ROSTER = "join_refused_on_roster"


class Channel(StrEnum):
    API = "api"
    H5 = "h5"
    REVIEW = "review"
    JOIN = "join"  # an application to join (members.joining): refused when on a roster


@dataclass(frozen=True)
class Screened:
    """An attempt that passed the limits: its validated ID number and its blind index;
    ``locked`` when the number is locked (only a review request may go on, unmatched)."""

    number: str
    id_hash: bytes
    locked: bool


def verification_failed() -> InvalidInput:
    """The one answer for every mismatch (so it says nothing about who is on a roster)."""
    return InvalidInput(MembersError.VERIFICATION_FAILED, FAILED_MESSAGE, keep_changes=True)


def _record(
    session: Session,
    *,
    user_id: int,
    ip: str | None,
    channel: Channel,
    outcome: Outcome,
    number: str | None = None,
    entry: RosterEntry | None = None,
) -> None:
    audit.record(
        session,
        actor=Actor(user_id=user_id, ip=ip),
        action="members.verification_attempt",
        org_id=entry.org_id if entry else None,
        subject_type="roster_entry" if entry else None,
        subject_id=entry.id if entry else None,
        details={
            "outcome": str(outcome),
            "channel": str(channel),
            "id_number": mask(PiiField.ID_NUMBER, number) if number else None,
        },
    )


def _screen(
    session: Session, *, user_id: int, id_number: str, channel: Channel, ip: str | None
) -> Screened:
    """The limits, checked and counted before anything about the roster is read. Their
    refusals are recorded and committed (``keep_changes``) with the same audit row."""

    def refuse(exc: DomainError, outcome: Outcome, number: str | None = None) -> DomainError:
        _record(session, user_id=user_id, ip=ip, channel=channel, outcome=outcome, number=number)
        exc.keep_changes = True
        return exc

    account = ratelimit.hit(f"verify:user:{user_id}", limit=ATTEMPTS_PER_ACCOUNT, window_s=DAY_S)
    if not account.allowed:
        raise refuse(_throttled(account.retry_after_s), Outcome.THROTTLED)
    try:
        number = service.valid_id_number(id_number)
    except InvalidInput as exc:
        raise refuse(exc, Outcome.INVALID_ID_NUMBER) from None
    id_hash = blind_index(PiiField.ID_NUMBER, number)
    key = id_hash.hex()
    accounts_key = f"verify:id-accounts:{key}"
    first_try = ratelimit.hit(f"verify:id-user:{key}:{user_id}", limit=1, window_s=LOCK_S)
    if first_try.count == 1:
        accounts = ratelimit.hit(accounts_key, limit=ACCOUNTS_PER_ID_NUMBER, window_s=LOCK_S)
        if accounts.count == ACCOUNTS_PER_ID_NUMBER + 1:
            _flag(session, id_hash=id_hash, accounts=accounts.count)
    else:
        accounts = ratelimit.check(accounts_key, limit=ACCOUNTS_PER_ID_NUMBER)
    if not accounts.allowed:
        if channel == Channel.REVIEW:
            return Screened(number, id_hash, locked=True)
        locked = RateLimited(
            MembersError.VERIFY_LOCKED,
            "this ID number is locked after attempts from several accounts; "
            "ask your union or request a manual review",
            retry_after_s=accounts.retry_after_s,
        )
        raise refuse(locked, Outcome.LOCKED, number)
    per_number = ratelimit.hit(f"verify:id:{key}", limit=ATTEMPTS_PER_ID_NUMBER, window_s=DAY_S)
    if not per_number.allowed:
        raise refuse(_throttled(per_number.retry_after_s), Outcome.THROTTLED, number)
    return Screened(number, id_hash, locked=False)


def screen(
    session: Session, *, user_id: int, id_number: str, channel: Channel, ip: str | None
) -> Screened:
    """The limits of a verification attempt, for another way of matching an ID number
    against the rosters (an application to join tells whether the number is on one)."""
    return _screen(session, user_id=user_id, id_number=id_number, channel=channel, ip=ip)


def record_attempt(
    session: Session,
    *,
    user_id: int,
    ip: str | None,
    channel: Channel,
    outcome: Outcome,
    number: str | None,
    entry: RosterEntry | None,
) -> None:
    """Write an attempt's audit row, as :func:`verify_member` writes its own."""
    _record(
        session,
        user_id=user_id,
        ip=ip,
        channel=channel,
        outcome=outcome,
        number=number,
        entry=entry,
    )


def flag_id_number(session: Session, *, id_hash: bytes, accounts: int) -> None:
    """Flag the number to the staff of the roster that lists it (see :func:`_flag`)."""
    _flag(session, id_hash=id_hash, accounts=accounts)


def _throttled(retry_after_s: int) -> RateLimited:
    return RateLimited(
        MembersError.VERIFY_THROTTLED,
        "too many verification attempts; try again later or ask for a review",
        retry_after_s=retry_after_s,
    )


def _flag(session: Session, *, id_hash: bytes, accounts: int) -> None:
    """Tell the staff of the roster that lists this number (if one does) that several
    accounts tried it. Invisible to the caller, who gets the same refusal either way."""
    entry = session.scalar(select(RosterEntry).where(RosterEntry.id_number_hash == id_hash))
    if entry is None:
        return
    flag = session.scalar(
        select(VerificationFlag).where(VerificationFlag.id_number_hash == id_hash)
    )
    if flag is None:
        session.add(
            VerificationFlag(
                id_number_hash=id_hash,
                org_id=entry.org_id,
                roster_entry_id=entry.id,
                accounts=accounts,
            )
        )
    else:  # flagged before and resolved: open again
        flag.org_id, flag.accounts, flag.created_at = entry.org_id, accounts, now()
        flag.resolved_at = flag.resolved_by = None
    session.flush()


def verify_member(
    session: Session,
    *,
    user_id: int,
    name: str,
    id_number: str,
    channel: Channel = Channel.API,
    ip: str | None = None,
) -> Membership:
    """Make ``user_id`` the verified member of the roster entry that matches, within the
    limits. Call it before the unit of work has written (its limits commit on their own).

    Raises ``members.verification_failed`` for every mismatch, ``members.verification_
    under_review`` when the entry belongs to another account (a review request is opened),
    and ``members.verification_throttled`` / ``_locked`` (429) past a limit."""
    screened = _screen(session, user_id=user_id, id_number=id_number, channel=channel, ip=ip)
    name = name.strip()

    def record(outcome: Outcome, entry: RosterEntry | None) -> None:
        _record(
            session,
            user_id=user_id,
            ip=ip,
            channel=channel,
            outcome=outcome,
            number=screened.number,
            entry=entry,
        )

    entry = service.find_roster_entry(session, id_number=screened.number)
    if not service.on_roster(entry):
        entry = None
    try:
        membership = service.verify(session, user_id=user_id, name=name, id_number=screened.number)
    except DomainError as exc:
        if exc.code == MembersError.CLAIMED_BY_OTHER and entry is not None:
            record(Outcome.SENT_TO_REVIEW, entry)
            _open_review(session, user_id=user_id, entry=entry, name=name, number=screened.number)
            raise Conflict(
                MembersError.SENT_TO_REVIEW,
                "another account holds this membership; your request has gone to your "
                "union for review",
                keep_changes=True,
            ) from exc
        if exc.code == MembersError.ALREADY_VERIFIED:
            record(Outcome.ALREADY_VERIFIED, entry)
            exc.keep_changes = True
            raise
        outcome = Outcome.NOT_IN_ROSTER if entry is None else Outcome.NAME_MISMATCH
        record(outcome, entry)
        raise verification_failed() from exc
    record(Outcome.VERIFIED, entry)
    return membership


def _open_review(
    session: Session, *, user_id: int, entry: RosterEntry, name: str, number: str
) -> None:
    """A review request for the union whose roster lists the entry another account holds:
    its staff decide who the person is (approving moves the membership)."""
    try:
        with session.begin_nested():
            session.add(
                VerificationRequest(
                    user_id=user_id,
                    org_id=entry.org_id,
                    name_hash=blind_index(PiiField.NAME, name),
                    name_enc=seal(PiiField.NAME, name),
                    id_number_hash=entry.id_number_hash,
                    id_number_enc=seal(PiiField.ID_NUMBER, number),
                    failure_code=MembersError.CLAIMED_BY_OTHER,
                )
            )
    except IntegrityError as exc:
        raise Conflict(
            MembersError.REVIEW_PENDING,
            "you already have a request under review",
            keep_changes=True,
        ) from exc


def screen_for_review(
    session: Session, *, user_id: int, name: str, id_number: str, ip: str | None = None
) -> tuple[str, str]:
    """A manual-review request's attempt: the same limits and audit as :func:`verify_member`,
    then the match, only to tell the reviewer why it failed. Returns the validated ID number
    and the failure code (the uniform one for a mismatch). A locked number is not matched."""
    screened = _screen(session, user_id=user_id, id_number=id_number, channel=Channel.REVIEW, ip=ip)
    existing = session.scalar(select(Membership).where(Membership.user_id == user_id))
    entry = (
        None if screened.locked else service.find_roster_entry(session, id_number=screened.number)
    )
    if not service.on_roster(entry):
        entry = None

    def record(outcome: Outcome) -> None:
        _record(
            session,
            user_id=user_id,
            ip=ip,
            channel=Channel.REVIEW,
            outcome=outcome,
            number=screened.number,
            entry=entry,
        )

    if existing is not None and existing.status == MembershipStatus.VERIFIED:
        record(Outcome.ALREADY_VERIFIED)
        raise Conflict(
            MembersError.ALREADY_VERIFIED, "you are already a verified member", keep_changes=True
        )
    if screened.locked:
        record(Outcome.REVIEW_REQUESTED)
        return screened.number, MembersError.VERIFY_LOCKED
    if entry is not None and entry.name_hash == blind_index(PiiField.NAME, name.strip()):
        holder = session.scalar(
            select(Membership.user_id).where(Membership.roster_entry_id == entry.id)
        )
        if holder is None:
            # Knowing both name and number is what verification asks: no oracle here.
            record(Outcome.REVIEW_NOT_NEEDED)
            raise Conflict(
                MembersError.REVIEW_NOT_NEEDED,
                "these details match the roster: verify directly instead of asking for a review",
                keep_changes=True,
            )
        record(Outcome.REVIEW_REQUESTED)
        return screened.number, MembersError.CLAIMED_BY_OTHER
    record(Outcome.REVIEW_REQUESTED)
    return screened.number, MembersError.VERIFICATION_FAILED


@dataclass(frozen=True)
class FlagView:
    id: int
    org_id: int
    roster_entry_id: int
    id_number: str
    accounts: int
    created_at: datetime
    resolved_at: datetime | None


def _flag_view(session: Session, flag: VerificationFlag) -> FlagView:
    entry = session.get(RosterEntry, flag.roster_entry_id)
    return FlagView(
        id=flag.id,
        org_id=flag.org_id,
        roster_entry_id=flag.roster_entry_id,
        id_number=(masked(PiiField.ID_NUMBER, entry.id_number_enc) if entry else None) or "",
        accounts=flag.accounts,
        created_at=flag.created_at,
        resolved_at=flag.resolved_at,
    )


def list_flags(session: Session, *, actor: Actor, open_only: bool = True) -> list[FlagView]:
    """Flagged ID numbers on the rosters of the staff member's subtree."""
    stmt = scoped(select(VerificationFlag), actor, Permission.MEMBERS_MANAGE)
    if open_only:
        stmt = stmt.where(VerificationFlag.resolved_at.is_(None))
    flags = session.scalars(stmt.order_by(VerificationFlag.id).limit(200))
    return [_flag_view(session, f) for f in flags]


def resolve_flag(session: Session, *, actor: Actor, flag_id: int) -> FlagView:
    """Staff have looked into the flag: it closes and the ID number's lock lifts."""
    flag = get_scoped(session, VerificationFlag, flag_id, actor, Permission.MEMBERS_MANAGE)
    if flag.resolved_at is None:
        flag.resolved_at, flag.resolved_by = now(), actor.user_id
        audit.record(
            session,
            actor=actor,
            action="members.verification_flag_resolve",
            org_id=flag.org_id,
            subject_type="roster_entry",
            subject_id=flag.roster_entry_id,
        )
        session.flush()
        key = f"verify:id-accounts:{flag.id_number_hash.hex()}"
        # The lock lives in the rate-limit store; lift it once the resolution is durable.
        on_commit(session, lambda: ratelimit.clear(key))
    return _flag_view(session, flag)

"""Members registering for a competition (alone, or a team under its captain) and
submitting files before the deadline."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, BinaryIO

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities.competition import form
from gonghui.activities.competition.errors import CompetitionError
from gonghui.activities.competition.models import Entry, EntryMember
from gonghui.activities.models import Activity, ActivityKind
from gonghui.activities.participation import (
    chain_ids,
    eligibility_problem,
    live_activity,
    participated,
    visible_activity,
)
from gonghui.activities.schemas import CompetitionRules
from gonghui.clock import local_day, now
from gonghui.errors import Conflict, InvalidInput, NotFound, field_error
from gonghui.members.models import Membership, MembershipStatus, RosterEntry
from gonghui.orgs.models import Org

KINDS = {ActivityKind.COMPETITION}
# Codes judges see: no 0/O or 1/I to misread on a tablet.
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def rules_of(activity: Activity) -> CompetitionRules:
    return CompetitionRules.model_validate(activity.config["competition"])


def new_code() -> str:
    return "E-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


def new_invite_code() -> str:
    """Eight characters of 32: guessing one of a competition's codes is hopeless within
    the risk limits that every join passes."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


def is_forming(entry: Entry, rules: CompetitionRules) -> bool:
    """A team still short of its minimum: it may not be judged."""
    return rules.teams and entry.team_size < rules.min_team_size


def _teammates(
    session: Session, *, activity: Activity, captain_id: int, membership_ids: Sequence[int]
) -> list[MemberInfo]:
    """The teammates named by membership id, each a verified member who may see and is
    eligible for the competition; one answer for every one that is not (no probing)."""
    if len(set(membership_ids)) != len(membership_ids) or captain_id in membership_ids:
        raise InvalidInput(
            CompetitionError.BAD_TEAM,
            "name each teammate once, and not the captain",
            [field_error("member_ids", CompetitionError.BAD_TEAM, "duplicate")],
        )
    rows = session.execute(
        select(Membership, Org.path, Org.archived_at, RosterEntry.join_date)
        .join(Org, Org.id == Membership.org_id)
        .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
        .where(Membership.id.in_(membership_ids), Membership.status == MembershipStatus.VERIFIED)
    ).all()
    found = {
        m.id: MemberInfo(
            membership_id=m.id,
            roster_entry_id=m.roster_entry_id,
            org_id=m.org_id,
            org_path=path,
            tags=tuple(str(t) for t in m.tags or ()),
            member_since=join_date or local_day(m.verified_at),
        )
        for m, path, archived_at, join_date in rows
        if archived_at is None
    }
    refused = [
        i
        for i in membership_ids
        if i not in found
        or activity.org_id not in chain_ids(found[i].org_path)
        or eligibility_problem(member=found[i], eligibility=activity.eligibility or {})
    ]
    if refused:
        raise InvalidInput(
            CompetitionError.BAD_TEAM,
            f"member {refused[0]} cannot take part in this competition",
            [field_error("member_ids", CompetitionError.BAD_TEAM, f"member {refused[0]}")],
        )
    return [found[i] for i in membership_ids]


def register(
    session: Session,
    *,
    member: MemberInfo,
    activity_id: int,
    answers: dict[str, Any],
    team_name: str | None = None,
    member_ids: Sequence[int] = (),
    invite: bool = False,
) -> Entry:
    """Register ``member`` (as captain of a team of ``member_ids`` when the competition
    takes teams) while registration is open; the form answers become a record of the form
    table. A member is in at most one entry per competition (a unique constraint).

    A team with room left gets an invite code its members pass on; with ``invite`` the
    captain may register it short of the minimum (even alone), and it stays forming
    (never handed to a panel) until enough teammates join (:func:`join_team`)."""
    activity = live_activity(session, member=member, activity_id=activity_id, kinds=KINDS)
    rules = rules_of(activity)
    instant = now()
    if not rules.registration_opens_at <= instant < rules.registration_closes_at:
        raise Conflict(CompetitionError.REGISTRATION_CLOSED, "registration is not open")
    if rules.teams:
        size = 1 + len(member_ids)
        smallest = 1 if invite else rules.min_team_size
        if not smallest <= size <= rules.max_team_size:
            raise InvalidInput(
                CompetitionError.BAD_TEAM,
                f"a team has {rules.min_team_size} to {rules.max_team_size} members",
                [field_error("member_ids", CompetitionError.BAD_TEAM, "team size")],
            )
        if not team_name:
            raise InvalidInput(
                CompetitionError.BAD_TEAM,
                "a team needs a name",
                [field_error("team_name", CompetitionError.BAD_TEAM, "required")],
            )
    elif member_ids or team_name or invite:
        raise InvalidInput(
            CompetitionError.BAD_TEAM,
            "this competition is for individuals",
            [field_error("member_ids", CompetitionError.BAD_TEAM, "individuals only")],
        )
    team = [
        member,
        *_teammates(
            session, activity=activity, captain_id=member.membership_id, membership_ids=member_ids
        ),
    ]
    # Checked before the form record is written, so a refused registration leaves no
    # record behind; the unique constraint below settles a race.
    taken = session.scalar(
        select(EntryMember.membership_id).where(
            EntryMember.activity_id == activity.id,
            EntryMember.membership_id.in_([m.membership_id for m in team]),
        )
    )
    if taken is not None:
        raise _already(taken, member)
    organiser, table = _form(session, activity)
    record_id = form.store_answers(
        session,
        organiser=organiser,
        form=table,
        user_id=_user_id(session, member),
        answers=answers,
    )
    entry = Entry(
        activity_id=activity.id,
        org_id=member.org_id,
        captain_membership_id=member.membership_id,
        team_name=team_name if rules.teams else None,
        team_size=len(team),
        invite_code=new_invite_code() if rules.teams and len(team) < rules.max_team_size else None,
        code=new_code(),
        record_id=record_id,
        file_ids=[],
    )
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
            session.add_all(
                EntryMember(
                    activity_id=activity.id,
                    entry_id=entry.id,
                    membership_id=m.membership_id,
                    org_id=m.org_id,
                )
                for m in team
            )
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            CompetitionError.ALREADY_REGISTERED, "someone in this team is already registered"
        ) from exc
    participated(session, activity=activity, members=[m.membership_id for m in team])
    return entry


def join_team(session: Session, *, member: MemberInfo, activity_id: int, invite_code: str) -> Entry:
    """``member`` joins the team whose invite code they were given, while registration is
    open. One answer for a code that is wrong or of another competition; the team's size
    is raised by a conditional update, so concurrent joins never pass the maximum."""
    activity = live_activity(session, member=member, activity_id=activity_id, kinds=KINDS)
    rules = rules_of(activity)
    if not rules.teams:
        raise InvalidInput(CompetitionError.BAD_TEAM, "this competition is for individuals")
    if not rules.registration_opens_at <= now() < rules.registration_closes_at:
        raise Conflict(CompetitionError.REGISTRATION_CLOSED, "registration is not open")
    entry = session.scalar(
        select(Entry).where(
            Entry.activity_id == activity.id,
            Entry.invite_code == invite_code.strip().upper(),
        )
    )
    if entry is None:
        raise InvalidInput(
            CompetitionError.BAD_INVITE,
            "no team of this competition has this invite code",
            [field_error("invite_code", CompetitionError.BAD_INVITE, "unknown")],
        )
    if session.scalar(
        select(EntryMember.id).where(
            EntryMember.activity_id == activity.id,
            EntryMember.membership_id == member.membership_id,
        )
    ):
        raise Conflict(CompetitionError.ALREADY_REGISTERED, "you are already registered")
    (joining,) = _teammates(
        session,
        activity=activity,
        captain_id=entry.captain_membership_id,
        membership_ids=[member.membership_id],
    )
    grown = session.execute(
        update(Entry)
        .where(Entry.id == entry.id, Entry.team_size < rules.max_team_size)
        .values(team_size=Entry.team_size + 1)
    )
    if grown.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(CompetitionError.TEAM_FULL, "this team is full")
    try:
        with session.begin_nested():
            session.add(
                EntryMember(
                    activity_id=activity.id,
                    entry_id=entry.id,
                    membership_id=joining.membership_id,
                    org_id=joining.org_id,
                )
            )
            session.flush()
    except IntegrityError as exc:
        raise Conflict(CompetitionError.ALREADY_REGISTERED, "you are already registered") from exc
    session.refresh(entry)
    if entry.team_size >= rules.max_team_size:
        entry.invite_code = None  # full: the code has done its work
    participated(session, activity=activity, members=[joining.membership_id])
    return entry


def _already(membership_id: int, member: MemberInfo) -> Conflict:
    if membership_id == member.membership_id:
        return Conflict(CompetitionError.ALREADY_REGISTERED, "you are already registered")
    return Conflict(
        CompetitionError.ALREADY_REGISTERED,
        f"member {membership_id} is already registered",
        [field_error("member_ids", CompetitionError.ALREADY_REGISTERED, str(membership_id))],
    )


def my_entry(session: Session, *, member: MemberInfo, activity_id: int) -> Entry:
    """The entry ``member`` is in (as captain or teammate), or not found."""
    activity = visible_activity(session, member=member, activity_id=activity_id)
    entry = session.scalar(
        select(Entry)
        .join(EntryMember, EntryMember.entry_id == Entry.id)
        .where(
            EntryMember.activity_id == activity.id,
            EntryMember.membership_id == member.membership_id,
        )
    )
    if entry is None:
        raise NotFound(CompetitionError.ENTRY_NOT_FOUND, "you have not registered")
    return entry


def submit(
    session: Session, *, member: MemberInfo, activity_id: int, file_ids: Sequence[int]
) -> Entry:
    """Set the entry's files (replacing any sent before) until the submission deadline.
    Any member of the entry may submit; the files must be uploads of the entry's members
    to the form's app, and only while the competition runs (not paused, not over)."""
    entry = my_entry(session, member=member, activity_id=activity_id)
    activity = live_activity(session, member=member, activity_id=activity_id, kinds=KINDS)
    rules = rules_of(activity)
    _check_deadline(rules)
    if len(set(file_ids)) != len(file_ids) or len(file_ids) > rules.max_files:
        raise InvalidInput(
            CompetitionError.BAD_FILES,
            f"at most {rules.max_files} distinct files",
            [field_error("file_ids", CompetitionError.BAD_FILES, "too many or repeated")],
        )
    uploaders = list(
        session.scalars(
            select(Membership.user_id)
            .join(EntryMember, EntryMember.membership_id == Membership.id)
            .where(EntryMember.entry_id == entry.id)
        )
    )
    mine = set(
        form.files_of(
            session, app_id=rules.form.app_id, file_ids=list(file_ids), uploaders=uploaders
        )
    )
    missing = [f for f in file_ids if f not in mine]
    if missing:
        raise InvalidInput(
            CompetitionError.BAD_FILES,
            f"file {missing[0]} is not one of your uploads",
            [field_error("file_ids", CompetitionError.BAD_FILES, f"file {missing[0]}")],
        )
    entry.file_ids = list(file_ids)
    entry.submitted_at = now()
    return entry


def _form(session: Session, activity: Activity) -> tuple[Org, dict[str, Any]]:
    """The competition's organiser and its registration form (app and table)."""
    organiser = session.get(Org, activity.org_id)
    assert organiser is not None
    return organiser, activity.config["competition"]["form"]


def form_fields(session: Session, *, activity: Activity) -> list[form.FormField]:
    """The fields of the competition's registration form, in their order."""
    organiser, table = _form(session, activity)
    return form.form_fields(session, organiser=organiser, form=table)


def _check_deadline(rules: CompetitionRules) -> None:
    if now() >= rules.submission_deadline:
        raise Conflict(CompetitionError.DEADLINE_PASSED, "the submission deadline has passed")


def _user_id(session: Session, member: MemberInfo) -> int:
    user_id = session.scalar(
        select(Membership.user_id).where(Membership.id == member.membership_id)
    )
    assert user_id is not None
    return user_id


def upload_limit(session: Session, *, member: MemberInfo, activity_id: int) -> int:
    """The largest file the member may add to their entry (the form app's limit)."""
    organiser, table = _form(
        session, visible_activity(session, member=member, activity_id=activity_id)
    )
    return form.upload_limit(session, organiser=organiser, form=table)


def add_file(
    session: Session,
    *,
    member: MemberInfo,
    activity_id: int,
    stream: BinaryIO,
    name: str,
    claimed_type: str | None,
) -> Entry:
    """One more file for the member's entry, uploaded to the form's app and submitted in
    the same transaction (the H5's upload; API clients upload to the app themselves and
    name the files with :func:`submit`). The same rules as :func:`submit`."""
    entry = my_entry(session, member=member, activity_id=activity_id)
    activity = live_activity(session, member=member, activity_id=activity_id, kinds=KINDS)
    rules = rules_of(activity)
    _check_deadline(rules)
    if len(entry.file_ids) >= rules.max_files:
        raise InvalidInput(
            CompetitionError.BAD_FILES,
            f"at most {rules.max_files} files",
            [field_error("file", CompetitionError.BAD_FILES, "too many")],
        )
    organiser, table = _form(session, activity)
    file_id = form.store_file(
        session,
        organiser=organiser,
        form=table,
        user_id=_user_id(session, member),
        stream=stream,
        name=name,
        claimed_type=claimed_type,
    )
    return submit(
        session, member=member, activity_id=activity_id, file_ids=[*entry.file_ids, file_id]
    )

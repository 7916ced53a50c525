"""Judging: operators make panels, name judges and hand them entries; judges see entries
only by their code, declare conflicts, and score each criterion of the rubric until the
panel closes.

Conflict of interest, precisely. A judge's unions are the org of their own membership (if
their account is also a member) and every org where they hold a staff role, except a role
at the organiser's org or above it (such a role covers every entrant: it is what lets them
judge, not a tie to one side). An entry's orgs are the membership orgs of everyone in it
(captain and teammates). A judge may not score an entry when one of the entry's orgs is
one of the judge's unions or lies below one, or when they declared a conflict with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.accounts.models import User
from gonghui.activities.competition import form
from gonghui.activities.competition.errors import CompetitionError
from gonghui.activities.competition.models import (
    DeclaredConflict,
    Entry,
    EntryMember,
    Panel,
    PanelJudge,
    Result,
    Score,
)
from gonghui.activities.competition.registration import KINDS, is_forming, rules_of
from gonghui.activities.models import Activity
from gonghui.activities.schemas import Criterion
from gonghui.activities.service import MANAGE, get_activity
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, NotFound, PermissionDenied, field_error
from gonghui.members.models import Membership, MembershipStatus
from gonghui.orgs.models import Org, StaffRole
from gonghui.tenancy import Actor, get_scoped, path_within


def managed_competition(session: Session, *, actor: Actor, activity_id: int) -> Activity:
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    if activity.kind not in KINDS:
        raise NotFound("activity.not_found", f"activity {activity_id} not found")
    return activity


def is_published(session: Session, activity_id: int) -> bool:
    """Whether the competition's ranking is frozen and public (see results.py)."""
    found = session.scalar(select(Result.id).where(Result.activity_id == activity_id).limit(1))
    return found is not None


def _not_published(session: Session, activity_id: int) -> None:
    if is_published(session, activity_id):
        raise Conflict(CompetitionError.RESULTS_PUBLISHED, "the results are published")


def _audit(session: Session, actor: Actor, action: str, panel: Panel, **details: object) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"competition.{action}",
        org_id=panel.org_id,
        subject_type="competition_panel",
        subject_id=panel.id,
        details={"activity_id": panel.activity_id, **details},
    )


# --- operators ----------------------------------------------------------------------------


def list_entries(session: Session, *, actor: Actor, activity_id: int) -> list[Entry]:
    activity = managed_competition(session, actor=actor, activity_id=activity_id)
    return list(session.scalars(select(Entry).where(Entry.activity_id == activity.id)))


def create_panel(session: Session, *, actor: Actor, activity_id: int, name: str) -> Panel:
    activity = managed_competition(session, actor=actor, activity_id=activity_id)
    _not_published(session, activity.id)
    panel = Panel(activity_id=activity.id, org_id=activity.org_id, name=name)
    session.add(panel)
    session.flush()
    _audit(session, actor, "panel.create", panel, name=name)
    return panel


def get_panel(session: Session, *, actor: Actor, panel_id: int) -> Panel:
    """A panel of a competition the operator manages (else not found)."""
    return get_scoped(session, Panel, panel_id, actor, MANAGE)


@dataclass(frozen=True)
class PanelView:
    """A panel as its competition's operators run it."""

    id: int
    name: str
    closed: bool
    judges: list[str]  # display names
    entries: int


def panels(session: Session, *, actor: Actor, activity_id: int) -> list[PanelView]:
    activity = managed_competition(session, actor=actor, activity_id=activity_id)
    found = list(
        session.scalars(select(Panel).where(Panel.activity_id == activity.id).order_by(Panel.id))
    )
    ids = [p.id for p in found]
    judges: dict[int, list[str]] = {i: [] for i in ids}
    for panel_id, name in session.execute(
        select(PanelJudge.panel_id, User.display_name)
        .join(User, User.id == PanelJudge.user_id)
        .where(PanelJudge.panel_id.in_(ids))
        .order_by(PanelJudge.id)
    ):
        judges[panel_id].append(name)
    counts = dict(
        session.execute(
            select(Entry.panel_id, func.count())
            .where(Entry.panel_id.in_(ids))
            .group_by(Entry.panel_id)
        ).all()
    )
    return [
        PanelView(p.id, p.name, p.closed_at is not None, judges[p.id], counts.get(p.id, 0))
        for p in found
    ]


def _open_panel(session: Session, *, actor: Actor, panel_id: int) -> Panel:
    panel = get_panel(session, actor=actor, panel_id=panel_id)
    if panel.closed_at is not None:
        raise Conflict(CompetitionError.PANEL_CLOSED, "the panel is closed")
    return panel


def add_judge(session: Session, *, actor: Actor, panel_id: int, user_id: int) -> PanelJudge:
    """Name a judge: any staff account (a role held somewhere); experts from other unions
    judge too, so the role need not be in the operator's subtree."""
    panel = _open_panel(session, actor=actor, panel_id=panel_id)
    if session.scalar(select(StaffRole.id).where(StaffRole.user_id == user_id).limit(1)) is None:
        raise InvalidInput(
            CompetitionError.BAD_JUDGE,
            f"user {user_id} is not a staff account",
            [field_error("user_id", CompetitionError.BAD_JUDGE, "not a staff account")],
        )
    judge = session.scalar(
        select(PanelJudge).where(PanelJudge.panel_id == panel.id, PanelJudge.user_id == user_id)
    )
    if judge is None:
        judge = PanelJudge(panel_id=panel.id, user_id=user_id)
        session.add(judge)
        session.flush()
        _audit(session, actor, "judge.add", panel, user_id=user_id)
    return judge


def assign_entries(
    session: Session, *, actor: Actor, panel_id: int, entry_ids: Sequence[int]
) -> list[Entry]:
    """Hand entries (of the panel's competition) to the panel; an entry is in one panel,
    so this moves it from any other (its scores there stay with that panel)."""
    panel = _open_panel(session, actor=actor, panel_id=panel_id)
    entries = list(
        session.scalars(
            select(Entry).where(Entry.activity_id == panel.activity_id, Entry.id.in_(entry_ids))
        )
    )
    missing = sorted(set(entry_ids) - {e.id for e in entries})
    if missing:
        raise NotFound(CompetitionError.ENTRY_NOT_FOUND, f"entry {missing[0]} not found")
    activity = session.get(Activity, panel.activity_id)
    assert activity is not None
    rules = rules_of(activity)
    forming = sorted(e.code for e in entries if is_forming(e, rules))
    if forming:
        raise Conflict(
            CompetitionError.TEAM_FORMING,
            f"team {forming[0]} has fewer than {rules.min_team_size} members",
        )
    for entry in entries:
        entry.panel_id = panel.id
    _audit(session, actor, "entries.assign", panel, entry_ids=sorted(entry_ids))
    return entries


def close_panel(session: Session, *, actor: Actor, panel_id: int) -> Panel:
    """From now on the panel's scores are final."""
    panel = _open_panel(session, actor=actor, panel_id=panel_id)
    panel.closed_at = now()
    _audit(session, actor, "panel.close", panel)
    return panel


# --- judges -------------------------------------------------------------------------------


def _judged_panel(session: Session, *, judge: Actor, panel_id: int) -> Panel:
    """The panel if ``judge`` sits on it; one answer otherwise, whether it exists or not."""
    panel = session.scalar(
        select(Panel)
        .join(PanelJudge, PanelJudge.panel_id == Panel.id)
        .where(Panel.id == panel_id, PanelJudge.user_id == judge.user_id)
    )
    if panel is None:
        raise NotFound(CompetitionError.PANEL_NOT_FOUND, f"panel {panel_id} not found")
    return panel


@dataclass(frozen=True)
class JudgeTask:
    """A panel the judge sits on, as their list of tasks shows it."""

    panel_id: int
    panel_name: str
    competition: str
    closed: bool
    entries: int
    scored: int


def my_panels(session: Session, *, judge: Actor) -> list[JudgeTask]:
    """The panels the judge sits on, newest first, with how many of their entries the
    judge has scored (entries they are conflicted on are not theirs to count)."""
    rows = session.execute(
        select(Panel, Activity.title)
        .join(PanelJudge, PanelJudge.panel_id == Panel.id)
        .join(Activity, Activity.id == Panel.activity_id)
        .where(PanelJudge.user_id == judge.user_id)
        .order_by(Panel.id.desc())
        .limit(200)
    ).all()
    assert judge.user_id is not None
    tasks = []
    for panel, title in rows:
        entries = [e.id for e in _panel_entries(session, panel)]
        barred = conflicted_entries(session, user_id=judge.user_id, panel=panel, entry_ids=entries)
        scored = set(
            session.scalars(
                select(Score.entry_id).where(
                    Score.panel_id == panel.id, Score.judge_user_id == judge.user_id
                )
            )
        )
        mine = [e for e in entries if e not in barred]
        tasks.append(
            JudgeTask(
                panel_id=panel.id,
                panel_name=panel.name,
                competition=title,
                closed=panel.closed_at is not None,
                entries=len(mine),
                scored=sum(1 for e in mine if e in scored),
            )
        )
    return tasks


def rubric(session: Session, *, judge: Actor, panel_id: int) -> tuple[Panel, str, list[Criterion]]:
    """The panel the judge sits on, its competition's title and its rubric."""
    panel = _judged_panel(session, judge=judge, panel_id=panel_id)
    activity = session.get(Activity, panel.activity_id)
    assert activity is not None
    return panel, activity.title, rules_of(activity).rubric


def judge_unions(session: Session, *, user_id: int, organiser_path: str) -> list[str]:
    """The org paths of the judge's unions (see the module's docstring)."""
    roles = session.scalars(
        select(Org.path)
        .join(StaffRole, StaffRole.org_id == Org.id)
        .where(StaffRole.user_id == user_id)
    )
    unions = [p for p in roles if not path_within(organiser_path, p)]
    own = session.scalar(
        select(Org.path)
        .join(Membership, Membership.org_id == Org.id)
        .where(Membership.user_id == user_id, Membership.status == MembershipStatus.VERIFIED)
    )
    if own is not None:
        unions.append(own)
    return unions


def conflicted_entries(
    session: Session, *, user_id: int, panel: Panel, entry_ids: Sequence[int]
) -> set[int]:
    """Those of ``entry_ids`` the judge may not score: declared, or of their own union."""
    organiser = session.get(Org, panel.org_id)
    assert organiser is not None
    unions = judge_unions(session, user_id=user_id, organiser_path=organiser.path)
    out = set(
        session.scalars(
            select(DeclaredConflict.entry_id).where(
                DeclaredConflict.user_id == user_id, DeclaredConflict.entry_id.in_(entry_ids)
            )
        )
    )
    if unions:
        rows = session.execute(
            select(EntryMember.entry_id, Org.path)
            .join(Org, Org.id == EntryMember.org_id)
            .where(EntryMember.entry_id.in_(entry_ids))
        )
        out |= {e for e, path in rows if any(path_within(path, u) for u in unions)}
    return out


@dataclass(frozen=True)
class FileLink:
    id: int
    content_type: str
    url: str


@dataclass(frozen=True)
class BlindEntry:
    """What a judge sees of an entry: its code, its files and their own scores. Nothing
    else: not the names, the team name, the org, the form answers or the entry's id."""

    code: str
    submitted: bool
    files: list[FileLink]
    my_scores: dict[str, int] | None


def _panel_entries(session: Session, panel: Panel) -> list[Entry]:
    return list(
        session.scalars(select(Entry).where(Entry.panel_id == panel.id).order_by(Entry.code))
    )


def judge_view(session: Session, *, judge: Actor, panel_id: int) -> list[BlindEntry]:
    """The panel's entries the judge may score, by code (conflicted ones are left out)."""
    panel = _judged_panel(session, judge=judge, panel_id=panel_id)
    assert judge.user_id is not None
    entries = _panel_entries(session, panel)
    barred = conflicted_entries(
        session, user_id=judge.user_id, panel=panel, entry_ids=[e.id for e in entries]
    )
    mine = {
        s.entry_id: s.scores
        for s in session.scalars(
            select(Score).where(Score.panel_id == panel.id, Score.judge_user_id == judge.user_id)
        )
    }
    activity = session.get(Activity, panel.activity_id)
    organiser = session.get(Org, panel.org_id)
    assert activity is not None
    assert organiser is not None
    form_table = activity.config["competition"]["form"]
    return [
        BlindEntry(
            code=e.code,
            submitted=e.submitted_at is not None,
            files=[
                FileLink(i, t, u)
                for i, t, u in form.download_urls(
                    session, organiser=organiser, form=form_table, file_ids=e.file_ids
                )
            ],
            my_scores=mine.get(e.id),
        )
        for e in entries
        if e.id not in barred
    ]


def _entry_by_code(session: Session, panel: Panel, code: str) -> Entry:
    entry = session.scalar(select(Entry).where(Entry.panel_id == panel.id, Entry.code == code))
    if entry is None:
        raise NotFound(CompetitionError.ENTRY_NOT_FOUND, f"entry {code} not found")
    return entry


def declare_conflict(session: Session, *, judge: Actor, panel_id: int, code: str) -> None:
    """The judge withdraws from an entry; their score of it, if any, is dropped."""
    panel = _judged_panel(session, judge=judge, panel_id=panel_id)
    entry = _entry_by_code(session, panel, code)
    try:
        with session.begin_nested():
            session.add(DeclaredConflict(entry_id=entry.id, user_id=judge.user_id))
            session.flush()
    except IntegrityError:
        return  # declared before
    for score in session.scalars(
        select(Score).where(Score.entry_id == entry.id, Score.judge_user_id == judge.user_id)
    ):
        session.delete(score)


def score_entry(
    session: Session, *, judge: Actor, panel_id: int, code: str, scores: Mapping[str, int]
) -> Score:
    """Set the judge's scores of an entry (every criterion, each within 0..max), replacing
    earlier ones, while the panel is open; never for an entry they are conflicted on."""
    panel = _judged_panel(session, judge=judge, panel_id=panel_id)
    assert judge.user_id is not None
    if panel.closed_at is not None:
        raise Conflict(CompetitionError.PANEL_CLOSED, "the panel is closed; scores are final")
    entry = _entry_by_code(session, panel, code)
    if conflicted_entries(session, user_id=judge.user_id, panel=panel, entry_ids=[entry.id]):
        raise PermissionDenied(
            CompetitionError.CONFLICT_OF_INTEREST, "you may not score this entry"
        )
    activity = session.get(Activity, panel.activity_id)
    assert activity is not None
    rubric = {c.key: c for c in rules_of(activity).rubric}
    problems = [
        field_error(f"scores.{k}", CompetitionError.BAD_SCORES, "not in the rubric")
        for k in scores
        if k not in rubric
    ] + [
        field_error(f"scores.{k}", CompetitionError.BAD_SCORES, f"0 to {c.max_score}")
        for k, c in rubric.items()
        if not (k in scores and 0 <= scores[k] <= c.max_score)
    ]
    if problems:
        raise InvalidInput(
            CompetitionError.BAD_SCORES, "score every criterion within its range", problems
        )
    values = {k: int(scores[k]) for k in rubric}
    mine = select(Score).where(Score.entry_id == entry.id, Score.judge_user_id == judge.user_id)
    row = session.scalar(mine)
    if row is None:
        try:  # the same judge on two tablets at once: the second write updates the first
            with session.begin_nested():
                row = Score(
                    panel_id=panel.id, entry_id=entry.id, judge_user_id=judge.user_id, scores={}
                )
                session.add(row)
                session.flush()
        except IntegrityError:
            row = session.scalars(mine).one()
    row.panel_id = panel.id
    row.scores = values
    row.updated_at = now()
    session.flush()
    return row

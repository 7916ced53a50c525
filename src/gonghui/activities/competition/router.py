"""Competitions over HTTP: members register and submit, operators run panels and publish,
judges score blind, and anyone reads the published results."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gonghui.activities.competition import (
    certificates,
    judging,
    public_vote,
    registration,
    results,
)
from gonghui.activities.competition.schemas import (
    BlindEntryRead,
    EntriesAssign,
    EntryRead,
    JudgeAdd,
    MyEntry,
    PanelCreate,
    PanelRead,
    PublicResultsRead,
    PublicVoteRead,
    PublicVoteRequest,
    RankedRead,
    RegistrationCreate,
    ScoreRead,
    ScoresSet,
    SubmissionUpdate,
    TeamJoin,
)
from gonghui.deps import CurrentMember, CurrentStaff, SessionDep
from gonghui.types import Id

router = APIRouter(prefix="/api/v1", tags=["competition"])


# --- members ------------------------------------------------------------------------------


@router.post(
    "/activities/{activity_id}/competition/registration", status_code=status.HTTP_201_CREATED
)
def register(
    activity_id: Id, body: RegistrationCreate, member: CurrentMember, session: SessionDep
) -> MyEntry:
    entry = registration.register(
        session,
        member=member,
        activity_id=activity_id,
        answers=body.answers,
        team_name=body.team_name,
        member_ids=body.member_ids,
        invite=body.invite,
    )
    return MyEntry.model_validate(entry)


@router.post("/activities/{activity_id}/competition/registration/join")
def join_team(
    activity_id: Id, body: TeamJoin, member: CurrentMember, session: SessionDep
) -> MyEntry:
    """Join a team with the invite code one of its members passed on."""
    entry = registration.join_team(
        session, member=member, activity_id=activity_id, invite_code=body.invite_code
    )
    return MyEntry.model_validate(entry)


@router.get("/activities/{activity_id}/competition/registration")
def my_registration(activity_id: Id, member: CurrentMember, session: SessionDep) -> MyEntry:
    entry = registration.my_entry(session, member=member, activity_id=activity_id)
    return MyEntry.model_validate(entry)


@router.get(
    "/activities/{activity_id}/competition/certificate",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def my_certificate(activity_id: Id, member: CurrentMember, session: SessionDep) -> Response:
    """The member's own certificate (PDF) once the results are published and ranked."""
    return certificates.download(
        certificates.member_certificate(session, member=member, activity_id=activity_id)
    )


@router.put("/activities/{activity_id}/competition/registration/files")
def submit_files(
    activity_id: Id, body: SubmissionUpdate, member: CurrentMember, session: SessionDep
) -> MyEntry:
    entry = registration.submit(
        session, member=member, activity_id=activity_id, file_ids=body.file_ids
    )
    return MyEntry.model_validate(entry)


# --- operators ----------------------------------------------------------------------------


@router.get("/activities/{activity_id}/competition/entries")
def list_entries(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> list[EntryRead]:
    entries = judging.list_entries(session, actor=staff, activity_id=activity_id)
    return [EntryRead.model_validate(e) for e in entries]


@router.post("/activities/{activity_id}/competition/panels", status_code=status.HTTP_201_CREATED)
def create_panel(
    activity_id: Id, body: PanelCreate, staff: CurrentStaff, session: SessionDep
) -> PanelRead:
    panel = judging.create_panel(session, actor=staff, activity_id=activity_id, name=body.name)
    return PanelRead.model_validate(panel)


@router.post("/competition/panels/{panel_id}/judges", status_code=status.HTTP_204_NO_CONTENT)
def add_judge(panel_id: Id, body: JudgeAdd, staff: CurrentStaff, session: SessionDep) -> Response:
    judging.add_judge(session, actor=staff, panel_id=panel_id, user_id=body.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/competition/panels/{panel_id}/entries")
def assign_entries(
    panel_id: Id, body: EntriesAssign, staff: CurrentStaff, session: SessionDep
) -> list[EntryRead]:
    entries = judging.assign_entries(
        session, actor=staff, panel_id=panel_id, entry_ids=body.entry_ids
    )
    return [EntryRead.model_validate(e) for e in entries]


@router.post("/competition/panels/{panel_id}/close")
def close_panel(panel_id: Id, staff: CurrentStaff, session: SessionDep) -> PanelRead:
    return PanelRead.model_validate(judging.close_panel(session, actor=staff, panel_id=panel_id))


@router.get("/activities/{activity_id}/competition/ranking")
def ranking(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> list[RankedRead]:
    """The ranking as the scores stand now, for the operator (nothing frozen)."""
    ranked = results.preview(session, actor=staff, activity_id=activity_id)
    return [RankedRead.model_validate(r) for r in ranked]


@router.get(
    "/activities/{activity_id}/competition/entries/{entry_id}/certificate",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def entry_certificate(
    activity_id: Id, entry_id: Id, staff: CurrentStaff, session: SessionDep
) -> Response:
    """A ranked entry's certificate (PDF) naming all its members, for the organiser."""
    return certificates.download(
        certificates.entry_certificate(
            session, actor=staff, activity_id=activity_id, entry_id=entry_id
        )
    )


@router.post("/activities/{activity_id}/competition/results/publish")
def publish_results(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> list[RankedRead]:
    rows = results.publish(session, actor=staff, activity_id=activity_id)
    return [RankedRead.model_validate(r) for r in rows]


@router.post("/activities/{activity_id}/competition/public-vote")
def put_to_public_vote(
    activity_id: Id, body: PublicVoteRequest, staff: CurrentStaff, session: SessionDep
) -> PublicVoteRead:
    """The published ranking's entries become approved candidates of a praise vote of the
    competition's union (again: only entries not there yet)."""
    added = public_vote.put_to_vote(
        session, actor=staff, activity_id=activity_id, vote_id=body.vote_id
    )
    return PublicVoteRead(vote_id=body.vote_id, added=added)


# --- judges -------------------------------------------------------------------------------


@router.get("/competition/panels/{panel_id}/judging")
def judge_view(panel_id: Id, staff: CurrentStaff, session: SessionDep) -> list[BlindEntryRead]:
    """The judge's entries, by code only (no names, team names, unions or form answers)."""
    entries = judging.judge_view(session, judge=staff, panel_id=panel_id)
    return [BlindEntryRead.model_validate(e) for e in entries]


@router.put("/competition/panels/{panel_id}/judging/{code}/scores")
def score_entry(
    panel_id: Id, code: str, body: ScoresSet, staff: CurrentStaff, session: SessionDep
) -> ScoreRead:
    row = judging.score_entry(
        session, judge=staff, panel_id=panel_id, code=code, scores=body.scores
    )
    return ScoreRead(code=code, scores=row.scores, updated_at=row.updated_at)


@router.post(
    "/competition/panels/{panel_id}/judging/{code}/conflict",
    status_code=status.HTTP_204_NO_CONTENT,
)
def declare_conflict(panel_id: Id, code: str, staff: CurrentStaff, session: SessionDep) -> Response:
    judging.declare_conflict(session, judge=staff, panel_id=panel_id, code=code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- everyone -----------------------------------------------------------------------------


@router.get("/public/competitions/{activity_id}/results")
def public_results(activity_id: Id, session: SessionDep) -> PublicResultsRead:
    """Before publication only ``published: false``; then the ranking with names."""
    return PublicResultsRead.model_validate(
        results.public_results(session, activity_id=activity_id)
    )

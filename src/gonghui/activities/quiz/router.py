"""Question banks (operators) and quiz attempts and leaderboards (members)."""

from __future__ import annotations

from fastapi import APIRouter, UploadFile, status

from gonghui import hotwrite, risk
from gonghui.activities.quiz import attempts, bank
from gonghui.activities.quiz.schemas import (
    AttemptRead,
    ImportResult,
    Leaderboard,
    QuestionCreate,
    QuestionRead,
    SubmitRequest,
    SubmitResult,
)
from gonghui.bodylimit import max_body, upload_limit
from gonghui.db import unit_of_work
from gonghui.deps import (
    CurrentMember,
    CurrentStaff,
    IdempotencyKey,
    RiskContext,
    SessionDep,
)
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1", tags=["quiz"])


@router.post("/orgs/{org_id}/questions", status_code=status.HTTP_201_CREATED)
def create_question(
    org_id: Id, body: QuestionCreate, staff: CurrentStaff, session: SessionDep
) -> QuestionRead:
    question = bank.create_question(session, actor=staff, org_id=org_id, data=body)
    return QuestionRead.model_validate(question)


@router.get("/orgs/{org_id}/questions")
def list_questions(
    org_id: Id, staff: CurrentStaff, session: SessionDep, tag: str | None = None
) -> list[QuestionRead]:
    questions = bank.list_questions(session, actor=staff, org_id=org_id, tag=tag)
    return [QuestionRead.model_validate(q) for q in questions]


@router.post("/orgs/{org_id}/questions/import", status_code=status.HTTP_201_CREATED)
@max_body(upload_limit)
def import_questions(org_id: Id, file: UploadFile, staff: CurrentStaff) -> ImportResult:
    """Import an XLSX question sheet (all rows or none)."""
    questions = bank.parse_xlsx(file.file)  # before the write transaction: no lock held
    with unit_of_work() as session:
        created = bank.add_questions(session, actor=staff, org_id=org_id, questions=questions)
    return ImportResult(created=created)


@router.post("/activities/{activity_id}/quiz/attempts", status_code=status.HTTP_201_CREATED)
async def start_attempt(
    activity_id: Id, member: CurrentMember, context: RiskContext
) -> AttemptRead:
    """Start an attempt (risk control may ask for a challenge first)."""
    await risk.check_async(risk.Action.QUIZ_ATTEMPT, member, context, activity_id=activity_id)
    return await hotwrite.run_async(attempts.start_attempt, member=member, activity_id=activity_id)


@router.post("/quiz/attempts/{attempt_id}/submit")
async def submit_attempt(
    attempt_id: Id,
    body: SubmitRequest,
    member: CurrentMember,
    idem: IdempotencyKey,
) -> SubmitResult:
    return await hotwrite.run_async(
        attempts.submit,
        member=member,
        attempt_id=attempt_id,
        answers=body.answers,
        idempotency_key=idem,
    )


@router.get("/activities/{activity_id}/quiz/leaderboard")
def get_leaderboard(
    activity_id: Id, member: CurrentMember, session: SessionDep, limit: Count = 20
) -> Leaderboard:
    return attempts.leaderboard(session, member=member, activity_id=activity_id, limit=limit)

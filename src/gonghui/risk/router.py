"""Members fetch a challenge's picture; operators set an activity's risk limits and
review its anomaly flags."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from gonghui.deps import CurrentMember, CurrentStaff, SessionDep
from gonghui.risk import challenges, flags, policy
from gonghui.risk.models import FlagStatus
from gonghui.types import Id

router = APIRouter(prefix="/api/v1", tags=["risk"])


@router.get("/risk/challenges/{challenge_id}/image", response_class=Response)
async def challenge_image(challenge_id: str, member: CurrentMember) -> Response:
    """The challenge's picture: a new puzzle at each fetch (the member's own challenges
    only, a limited number of times)."""
    png = await run_in_threadpool(
        challenges.picture,
        membership_id=member.membership_id,
        challenge_id=challenge_id[:128],
    )
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


class FlagRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    activity_id: int | None
    kind: str
    subject: str
    status: str
    evidence: dict[str, Any]
    raised_at: datetime
    reviewed_by: int | None
    reviewed_at: datetime | None
    note: str | None


class FlagReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "dismissed"]
    note: str | None = Field(default=None, max_length=500)


@router.get("/risk/flags")
def list_flags(
    staff: CurrentStaff,
    session: SessionDep,
    status: FlagStatus | None = None,
    activity_id: Id | None = None,
    before: Id | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> list[FlagRead]:
    """Flags of the operator's org subtree, newest first."""
    found = flags.list_flags(
        session, actor=staff, status=status, activity_id=activity_id, before=before, limit=limit
    )
    return [FlagRead.model_validate(f) for f in found]


@router.post("/risk/flags/{flag_id}/review")
def review_flag(
    flag_id: Id, body: FlagReview, staff: CurrentStaff, session: SessionDep
) -> FlagRead:
    """Confirm (the subject stays challenged) or dismiss (let through) an open flag."""
    flag = flags.review(
        session, actor=staff, flag_id=flag_id, decision=FlagStatus(body.decision), note=body.note
    )
    return FlagRead.model_validate(flag)


@router.get("/activities/{activity_id}/risk-limits")
def get_limits(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> policy.Limits:
    return policy.get_limits(session, actor=staff, activity_id=activity_id)


@router.put("/activities/{activity_id}/risk-limits")
def set_limits(
    activity_id: Id, body: policy.Limits, staff: CurrentStaff, session: SessionDep
) -> policy.Limits:
    """Set the activity's risk limits (audited); every server follows at once."""
    return policy.set_limits(session, actor=staff, activity_id=activity_id, limits=body)

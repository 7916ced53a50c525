"""Members draw; anyone reads a lottery's proof and its winner list; operators dry-run a
lottery's prize table."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from gonghui import hotwrite, risk
from gonghui.activities.lottery import draw as draws
from gonghui.activities.lottery import dry_run, proof
from gonghui.deps import (
    CurrentStaff,
    MemberAction,
    SessionDep,
    public_log_download,
)
from gonghui.types import Id

router = APIRouter(prefix="/api/v1", tags=["lottery"])


class DrawCreate(BaseModel):
    entropy: str = Field(
        default="", max_length=64, pattern=r"^[A-Za-z0-9_-]*$", description="client randomness"
    )


class DrawnPrize(BaseModel):
    position: int
    name: str
    kind: str
    value: int


class DrawRead(BaseModel):
    draw_id: int
    activity_id: int
    draw_no: int
    outcome: str
    won: bool
    prize: DrawnPrize | None
    benefit: str | None
    roll: str
    chances_left: int
    at: datetime


class Winner(BaseModel):
    name: str | None
    prize: str
    at: datetime


@router.post("/activities/{activity_id}/draws", response_model=DrawRead)
async def create_draw(
    activity_id: Id, caller: MemberAction, body: DrawCreate | None = None
) -> Response:
    """Draw once. The draw, its ledger entry and the stored idempotent response are
    committed before this returns. Risk control may ask for a challenge first (403
    ``risk.challenge_required``)."""
    member = caller.member
    await risk.check_async(risk.Action.DRAW, member, caller.risk, activity_id=activity_id)
    entropy = (body or DrawCreate()).entropy
    result = await hotwrite.run_async(
        draws.draw,
        member=member,
        activity_id=activity_id,
        client_entropy=entropy,
        idempotency_key=caller.idempotency_key,
    )
    # A hot path: the writer's answer validated and serialised once, straight to bytes.
    return Response(
        DrawRead.model_validate(result).model_dump_json(), media_type="application/json"
    )


@router.get("/public/lotteries/{activity_id}/proof", dependencies=[Depends(public_log_download)])
def get_proof(activity_id: Id, session: SessionDep) -> dict[str, Any]:
    """SHA-256 commitment of the seed; after the end also the seed and the ordered draw log
    (feed it to ``gonghui lottery verify``)."""
    return proof.draw_log(session, activity_id=activity_id)


@router.get("/public/lotteries/{activity_id}/winners")
def get_winners(activity_id: Id, session: SessionDep) -> list[Winner]:
    return [Winner.model_validate(w) for w in proof.winners(session, activity_id=activity_id)]


class DryRunCreate(BaseModel):
    members: int = Field(ge=1, le=10_000_000, description="members expected to take part")
    participation: float = Field(
        default=0.3, gt=0, le=1, description="share of them who draw on a day"
    )
    draws_per_day: int | None = Field(
        default=None, ge=1, le=100, description="by each of them; default: the free draws"
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="the same seed, the same run")


class DryRunPrize(BaseModel):
    position: int
    name: str
    kind: str
    stock: int
    picked: int
    won: int
    out_of_stock_on: date | None


class DryRunDay(BaseModel):
    day: date
    draws: int
    won: int
    cents: int
    points: int


class DryRunRead(BaseModel):
    draws: int
    drawing_members: int
    winners: int
    outcomes: dict[str, int]
    prizes: list[DryRunPrize]
    days: list[DryRunDay]
    cents_budget: int | None
    cents_used: int
    points_budget: int | None
    points_used: int
    budget_out_on: date | None


@router.post("/activities/{activity_id}/dry-run")
def create_dry_run(
    activity_id: Id, body: DryRunCreate, staff: CurrentStaff, session: SessionDep
) -> DryRunRead:
    """Play the lottery's prize table, limits and budget against simulated members (see
    ``lottery.dry_run``); nothing is written."""
    scenario = dry_run.Scenario(**body.model_dump())
    run = dry_run.dry_run(session, actor=staff, activity_id=activity_id, scenario=scenario)
    return DryRunRead(
        draws=run.draws,
        drawing_members=run.drawing_members,
        winners=run.winners,
        outcomes={str(k): v for k, v in run.outcomes.items()},
        prizes=[DryRunPrize.model_validate(p, from_attributes=True) for p in run.prizes],
        days=[DryRunDay.model_validate(d, from_attributes=True) for d in run.days],
        cents_budget=run.cents_budget,
        cents_used=run.cents_used,
        points_budget=run.points_budget,
        points_used=run.points_used,
        budget_out_on=run.budget_out_on,
    )

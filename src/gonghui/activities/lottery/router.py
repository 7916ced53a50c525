"""Members draw; anyone reads a lottery's proof and its winner list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from gonghui import hotwrite, risk
from gonghui.activities.lottery import draw as draws
from gonghui.activities.lottery import proof
from gonghui.deps import CurrentMember, IdempotencyKey, RiskContext, SessionDep
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
    activity_id: Id,
    member: CurrentMember,
    idem: IdempotencyKey,
    context: RiskContext,
    body: DrawCreate | None = None,
) -> Response:
    """Draw once. The draw, its ledger entry and the stored idempotent response are
    committed before this returns. Risk control may ask for a challenge first (403
    ``risk.challenge_required``)."""
    await risk.check_async(risk.Action.DRAW, member, context, activity_id=activity_id)
    entropy = (body or DrawCreate()).entropy
    result = await hotwrite.run_async(
        draws.draw,
        member=member,
        activity_id=activity_id,
        client_entropy=entropy,
        idempotency_key=idem,
    )
    # A hot path: the writer's answer validated and serialised once, straight to bytes.
    return Response(
        DrawRead.model_validate(result).model_dump_json(), media_type="application/json"
    )


@router.get("/public/lotteries/{activity_id}/proof")
def get_proof(activity_id: Id, session: SessionDep) -> dict[str, Any]:
    """SHA-256 commitment of the seed; after the end also the seed and the ordered draw log
    (feed it to ``gonghui lottery verify``)."""
    return proof.draw_log(session, activity_id=activity_id)


@router.get("/public/lotteries/{activity_id}/winners")
def get_winners(activity_id: Id, session: SessionDep) -> list[Winner]:
    return [Winner.model_validate(w) for w in proof.winners(session, activity_id=activity_id)]

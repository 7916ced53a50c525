"""Members claim a voucher grab's coupons and follow them; anyone who may see the campaign
sees its stocks and what is left of them; operators pause and restart its stocks and watch
its opening minute."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from gonghui import hotwrite, risk
from gonghui.activities.participation import visible_activity
from gonghui.activities.voucher_grab import claims, dashboard, stocks
from gonghui.db import unit_of_work
from gonghui.deps import CurrentMember, CurrentStaff, MemberAction
from gonghui.types import Id

router = APIRouter(prefix="/api/v1", tags=["vouchers"])


class StockRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    coupon_amount_cents: int
    threshold_cents: int
    max_coupons: int
    max_per_member: int
    claimed: int
    # opening (being created at WeChat Pay), running, paused, failed
    status: str


class ClaimRead(BaseModel):
    id: int
    activity_id: int
    stock_id: int
    name: str
    coupon_amount_cents: int
    threshold_cents: int
    # sending (committed; the coupon is on its way), waiting (its stock is paused; sent when
    # it restarts), sent, used, failed (given back)
    state: str
    coupon_id: str | None
    claimed_at: datetime
    sent_at: datetime | None
    used_at: datetime | None


@router.get("/activities/{activity_id}/voucher-stocks", response_model=list[StockRead])
async def list_stocks(activity_id: Id, member: CurrentMember) -> Any:
    """The campaign's stocks, with how many are claimed."""

    def read() -> list[StockRead]:
        with unit_of_work(read_only=True) as session:
            visible_activity(session, member=member, activity_id=activity_id)
            rows = stocks.list_stocks(session, activity_id=activity_id)
            return [StockRead.model_validate(row) for row in rows]

    return await run_in_threadpool(read)


@router.post(
    "/activities/{activity_id}/voucher-stocks/{stock_id}/claims",
    response_model=ClaimRead,
    status_code=status.HTTP_201_CREATED,
)
async def claim(
    activity_id: Id,
    stock_id: Id,
    caller: MemberAction,
) -> Any:
    """Claim one coupon. Answered once the claim is committed, in state ``sending``: the
    coupon follows in WeChat (see ``GET /me/voucher-claims``). Risk control may ask for a
    challenge first."""
    member = caller.member
    await risk.check_async(risk.Action.CLAIM, member, caller.risk, activity_id=activity_id)
    return await hotwrite.run_async(
        claims.claim,
        member=member,
        activity_id=activity_id,
        stock_id=stock_id,
        idempotency_key=caller.idempotency_key,
    )


@router.get("/me/voucher-claims", response_model=list[ClaimRead])
async def my_claims(member: CurrentMember) -> Any:
    """The member's claims, newest first (200 at most)."""

    def read() -> list[dict[str, Any]]:
        with unit_of_work(read_only=True) as session:
            return claims.member_claims(session, membership_id=member.membership_id)

    return await run_in_threadpool(read)


@router.post("/activities/{activity_id}/voucher-stocks/{stock_id}/pause", response_model=StockRead)
async def pause_stock(activity_id: Id, stock_id: Id, staff: CurrentStaff) -> Any:
    """Pause a running stock at WeChat Pay: claims of it are refused until it restarts."""
    return await run_in_threadpool(
        stocks.move_stock, actor=staff, activity_id=activity_id, stock_id=stock_id, move="pause"
    )


@router.post(
    "/activities/{activity_id}/voucher-stocks/{stock_id}/restart", response_model=StockRead
)
async def restart_stock(activity_id: Id, stock_id: Id, staff: CurrentStaff) -> Any:
    """Restart a paused stock at WeChat Pay."""
    return await run_in_threadpool(
        stocks.move_stock, actor=staff, activity_id=activity_id, stock_id=stock_id, move="restart"
    )


class StockFiguresRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: str
    max_coupons: int
    claimed: int
    left: int
    last_error: str | None


class OpeningMinuteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    # Claims in each of the last 60 seconds, oldest first; the rate over the last ten.
    claims_per_second: list[int]
    claims_rate: float
    stocks: list[StockFiguresRead]
    left: int
    # The send backlog, of which ``stuck`` ran out of attempts; the sends waiting for a
    # paused stock to restart; sent; refused.
    sending: int
    stuck: int
    waiting: int
    sent: int
    failed: int
    # While members' claims keep the hot writer busy, a coupon's send waits, this long at most.
    send_hold_s: float


@router.get("/activities/{activity_id}/voucher-dashboard", response_model=OpeningMinuteRead)
async def voucher_dashboard(activity_id: Id, staff: CurrentStaff) -> Any:
    """The grab's live figures, as its console dashboard shows them (operators)."""

    def read() -> OpeningMinuteRead:
        with unit_of_work(read_only=True) as session:
            figures = dashboard.opening_minute(session, actor=staff, activity_id=activity_id)
            return OpeningMinuteRead.model_validate(figures)

    return await run_in_threadpool(read)

"""Claiming a voucher grab's coupons from its activity page."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.activities.voucher_grab import claims, stocks
from gonghui.db import unit_of_work
from gonghui.h5.access import H5Member
from gonghui.h5.member_action import run_as_member
from gonghui.types import Id
from gonghui.web.session import check_csrf

router = APIRouter()


def page_context(membership_id: int, activity_id: int) -> dict[str, Any]:
    """The stocks of a voucher grab and the member's claims of it, for its page."""
    with unit_of_work(read_only=True) as session:
        rows = stocks.list_stocks(session, activity_id=activity_id)
        mine = claims.member_claims(session, membership_id=membership_id, activity_id=activity_id)
    return {
        "stocks": [
            {
                "id": s.id,
                "name": s.name,
                "amount": s.coupon_amount_cents,
                "threshold": s.threshold_cents,
                "left": max(s.max_coupons - s.claimed, 0),
                "status": str(s.status),
            }
            for s in rows
        ],
        "claims": mine,
        "claim_key": secrets.token_urlsafe(16),
    }


@router.post("/activities/{activity_id}/vouchers/{stock_id}/claim", response_class=HTMLResponse)
def claim(
    request: Request,
    user: H5Member,
    activity_id: Id,
    stock_id: Id,
    claim_key: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    return run_as_member(
        request,
        user,
        "h5/_voucher_result.html",
        claims.claim,
        activity_id=activity_id,
        stock_id=stock_id,
        idempotency_key=claim_key or None,
        shown=lambda result: {"claim": result},
    )

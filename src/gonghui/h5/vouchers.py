"""Claiming a voucher grab's coupons, from its activity page or the voucher centre (every
grab the member may see, upcoming ones counting down to their opening, and their coupons)."""

from __future__ import annotations

import functools
import secrets
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from gonghui import db, risk
from gonghui.activities import hub
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import ActivityKind, ActivityStatus
from gonghui.activities.voucher_grab import claims, stocks
from gonghui.activities.voucher_grab.models import ClaimState
from gonghui.db import unit_of_work
from gonghui.errors import NotFound
from gonghui.h5.access import H5Member, member_of
from gonghui.h5.member_action import run_as_member
from gonghui.types import Id
from gonghui.web.session import check_csrf
from gonghui.web.templating import render

router = APIRouter()


def _stock_cards(
    session: Session, activity_id: int, mine: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The grab's stocks as its claim buttons show them: what is left, and how many of the
    member's own claims (``mine``, as :func:`claims.member_claims` gives them) count
    against each stock's limit per member (a claim WeChat Pay refused was given back)."""
    held = Counter(c["stock_id"] for c in mine if c["state"] != ClaimState.FAILED)
    return [
        {
            "id": s.id,
            "name": s.name,
            "amount": s.coupon_amount_cents,
            "threshold": s.threshold_cents,
            "left": max(s.max_coupons - s.claimed, 0),
            "status": str(s.status),
            "mine": held[s.id],
            "max_per_member": s.max_per_member,
        }
        for s in stocks.list_stocks(session, activity_id=activity_id)
    ]


def page_context(membership_id: int, activity_id: int) -> dict[str, Any]:
    """The stocks of a voucher grab and the member's claims of it, for its page."""
    with unit_of_work(read_only=True) as session:
        mine = claims.member_claims(session, membership_id=membership_id, activity_id=activity_id)
        cards = _stock_cards(session, activity_id, mine)
    return {"stocks": cards, "claims": mine, "claim_key": secrets.token_urlsafe(16)}


@router.get("/vouchers", response_class=HTMLResponse)
def voucher_centre(request: Request, user: H5Member) -> Response:
    """The grabs the member's hub shows (upcoming: a countdown to the opening; open: each
    stock's claim button and what is left) and the member's coupons."""
    member = member_of(user)
    page = db.read_sync(functools.partial(hub.member_hub, member=member, limit=hub.MAX_PAGE))
    grabs = [item for item in page.items if item.kind == ActivityKind.VOUCHER_GRAB]
    with unit_of_work(read_only=True) as session:
        mine = claims.member_claims(session, membership_id=member.membership_id)
        open_stocks = {
            item.id: _stock_cards(session, item.id, mine)
            for item in grabs
            if item.status == ActivityStatus.LIVE
        }
    context = {
        "csrf_token": user.csrf_token,
        "tab": "vouchers",
        "grabs": grabs,
        "open_stocks": open_stocks,
        "claims": mine,
        "claim_key": secrets.token_urlsafe(16),
    }
    return render(request, "h5/vouchers.html", context)


# Which of her coupons a page lists: every one (the voucher centre sends ``coupons=all``
# with its taps and its claims' lines), or those of the grab it shows (its activity page).
CouponsShown = Literal["all", ""]


@router.post("/activities/{activity_id}/vouchers/{stock_id}/claim", response_class=HTMLResponse)
def claim(
    request: Request,
    user: H5Member,
    activity_id: Id,
    stock_id: Id,
    claim_key: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form()] = "",
    risk_challenge: Annotated[str, Form(max_length=128)] = "",
    risk_answer: Annotated[str, Form(max_length=64)] = "",
    coupons: Annotated[CouponsShown, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    membership_id = member_of(user).membership_id
    return run_as_member(
        request,
        user,
        "h5/_voucher_result.html",
        claims.claim,
        action=risk.Action.CLAIM,
        activity_id=activity_id,
        resend={"claim_key": claim_key, "csrf": csrf},
        challenge=(risk_challenge, risk_answer) if risk_challenge else None,
        stock_id=stock_id,
        idempotency_key=claim_key or None,
        shown=lambda result: _claim_line(result, asked=0),
        after=lambda: _after_claim(membership_id, activity_id, stock_id, every=coupons == "all"),
    )


def _after_claim(
    membership_id: int, activity_id: int, stock_id: int, *, every: bool
) -> dict[str, Any]:
    """The stock's card as it stands once a claim is answered (what is left, whether the
    member may claim again), with a new key for her next tap (a tap answered is not
    retried, and its key would replay its answer), and her coupons (``every`` one, or the
    grab's)."""
    with unit_of_work(read_only=True) as session:
        mine = claims.member_claims(session, membership_id=membership_id, activity_id=activity_id)
        cards = [c for c in _stock_cards(session, activity_id, mine) if c["id"] == stock_id]
        # Two reads, not one filtered: her list holds her newest 200 claims, which need
        # not hold every claim of this grab that the card counts against her limit.
        shown = claims.member_claims(session, membership_id=membership_id) if every else mine
    return {
        "stock": cards[0] if cards else None,
        "activity_id": activity_id,
        "claim_key": secrets.token_urlsafe(16),
        "coupons": shown,
    }


# How long the page waits before it asks again whether a claim's coupon has arrived, by
# the number of times it asked: soon at first (a send takes about a second), then less
# often for a send that waits (its stock paused, WeChat Pay slow).
POLL_S = (1, 1, 2, 2, 3, 5, 10, 30)
POLL_MAX = 1000
# The states in which a claim's line keeps asking: its coupon is still on its way.
ON_ITS_WAY = frozenset({ClaimState.SENDING, ClaimState.WAITING})


def _claim_line(claim: dict[str, Any], *, asked: int) -> dict[str, Any]:
    """What ``_voucher_claim.html`` shows of a claim the page ``asked`` about so often:
    whether the line keeps following it, and when it asks next."""
    return {
        "claim": claim,
        "following": claim["state"] in ON_ITS_WAY,
        "poll_s": POLL_S[min(asked, len(POLL_S) - 1)],
        "next_poll": min(asked + 1, POLL_MAX),
    }


@router.get("/voucher-claims/{claim_id}", response_class=HTMLResponse)
def claim_state(
    request: Request,
    user: H5Member,
    claim_id: Id,
    n: Annotated[int, Query(ge=0, le=POLL_MAX)] = 0,
    coupons: Annotated[CouponsShown, Query()] = "",
) -> Response:
    """One of the member's claims as its line on the page follows it (``n``: how many
    times the page asked before), until its coupon arrives or the send fails; then with
    her coupons too (every one, or the claim's grab's), for the list on the page."""
    membership_id = member_of(user).membership_id
    with unit_of_work(read_only=True) as session:
        found = claims.member_claims(session, membership_id=membership_id, claim_id=claim_id)
        if not found:
            raise NotFound(ActivitiesError.CLAIM_NOT_FOUND, "no such claim of yours")
        context = _claim_line(found[0], asked=n)
        if not context["following"]:
            grab = None if coupons == "all" else found[0]["activity_id"]
            context["coupons"] = claims.member_claims(
                session, membership_id=membership_id, activity_id=grab
            )
    return render(request, "h5/_voucher_result.html", context)

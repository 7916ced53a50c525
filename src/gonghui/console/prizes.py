"""Console: an activity's physical prizes to ship (the winner and the delivery address,
masked unless revealed for shipping, an audited act), shipping one with the courier and
its tracking number (the same services as the API's ``/activities/{id}/prizes``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from gonghui.activities import fulfilment
from gonghui.activities import service as activities
from gonghui.benefits.models import PrizeStatus
from gonghui.benefits.schemas import PrizeShipRequest
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.orgs import service as orgs
from gonghui.tenancy import Permission
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/activities", include_in_schema=False)

# Those to ship first, then those waiting for an address, then the rest.
_ORDER = {
    PrizeStatus.TO_SHIP: 0,
    PrizeStatus.AWAITING_ADDRESS: 1,
    PrizeStatus.SHIPPED: 2,
    PrizeStatus.FORFEITED: 3,
}


def _page(
    request: Request,
    user: PageUser,
    activity_id: int,
    *,
    reveal: bool = False,
    error: str | None = None,
    done: str | None = None,
) -> Response:
    actor = _actor(request, user)
    # Revealing writes its audit row, so that read commits.
    with unit_of_work(read_only=not reveal) as session:
        activity = activities.get_activity(session, actor=actor, activity_id=activity_id)
        org = orgs.get_org(session, actor=actor, org_id=activity.org_id)
        lines = fulfilment.list_prizes(session, actor=actor, activity_id=activity_id, reveal=reveal)
        rows: list[dict[str, Any]] = [
            {
                "prize": line.prize,
                "status": str(line.prize.status),
                "winner": line.winner,
                "address": line.address,
            }
            for line in sorted(lines, key=lambda x: (_ORDER[x.prize.status], x.prize.id))
        ]
    context = {
        "active": "nav.activities",
        "csrf_token": user.csrf_token,
        "activity": activity,
        "rows": rows,
        "to_ship": sum(1 for r in rows if r["status"] == PrizeStatus.TO_SHIP),
        "revealed": reveal,
        "may_reveal": actor.can(Permission.PII_UNMASK, org.path),
        "error": error,
        "done": done,
    }
    response = render(request, "console/activity_prizes.html", context)
    if reveal:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/{activity_id}/prizes", response_class=HTMLResponse)
def prizes_page(request: Request, user: ConsoleStaff, activity_id: Id, done: str = "") -> Response:
    return _page(request, user, activity_id, done="shipped" if done == "shipped" else None)


@router.post("/{activity_id}/prizes/reveal", response_class=HTMLResponse)
def reveal(
    request: Request, user: ConsoleStaff, activity_id: Id, csrf: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, user, csrf)
    try:
        return _page(request, user, activity_id, reveal=True)
    except DomainError as exc:
        return _page(request, user, activity_id, error=error_key(exc))


@router.post("/{activity_id}/prizes/{prize_id}/ship", response_class=HTMLResponse)
def ship(
    request: Request,
    user: ConsoleStaff,
    activity_id: Id,
    prize_id: Id,
    courier_company: Annotated[str, Form(max_length=50)] = "",
    courier_no: Annotated[str, Form(max_length=50)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    try:
        body = PrizeShipRequest(
            courier_company=courier_company.strip(), courier_no=courier_no.strip()
        )
    except ValidationError:
        return _page(request, user, activity_id, error="prizes.courier_needed")
    try:
        with unit_of_work() as session:
            fulfilment.ship(
                session,
                actor=_actor(request, user),
                activity_id=activity_id,
                prize_id=prize_id,
                courier_company=body.courier_company,
                courier_no=body.courier_no,
            )
    except DomainError as exc:
        return _page(request, user, activity_id, error=error_key(exc))
    return RedirectResponse(
        f"/console/activities/{activity_id}/prizes?done=shipped", status_code=303
    )

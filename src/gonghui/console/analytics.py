"""The console's analytics page (数据分析): an org subtree's members, verification, "one
activity a month" coverage, benefits and activities' participation and budgets, from the
scheduled aggregates (the same service as ``/api/v1/analytics``), with charts, tables
beside them, XLSX exports and "refresh now"."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui import xlsx
from gonghui.analytics import service as analytics
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.i18n import translator
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render, request_locale

router = APIRouter(prefix="/console/analytics", include_in_schema=False)

PERIODS = (3, 6, 12, 24)
# Activities with a budget shown in the budget chart (the table lists them all).
BUDGET_CHART_ACTIVITIES = 10


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _chart(overview: analytics.Overview, t: Any) -> dict[str, Any]:
    """What the page's charts draw (analytics_chart.js reads it from #analytics-data)."""
    kinds = sorted({b.kind for b in overview.benefits})
    issued = {(b.month, b.kind): b.issued_count for b in overview.benefits}
    used = {(b.month, b.kind): b.used_count for b in overview.benefits}
    budgeted = [a for a in overview.activities if a.budget_cents][:BUDGET_CHART_ACTIVITIES]
    return {
        "months": overview.months,
        "verified": [m.verified_members for m in overview.monthly],
        "active": [m.active_members for m in overview.monthly],
        "coverage": [_pct(m.coverage) for m in overview.monthly],
        "benefits": [
            {
                "label": t(f"analytics.kind.{kind}"),
                "issued": [issued.get((m, kind), 0) for m in overview.months],
                "used": [used.get((m, kind), 0) for m in overview.months],
            }
            for kind in kinds
        ],
        "budget": {
            "labels": [a.title for a in budgeted],
            "budget": [(a.budget_cents or 0) / 100 for a in budgeted],
            "spent": [a.spent_cents / 100 for a in budgeted],
        },
    }


def _page(
    request: Request,
    user: PageUser,
    *,
    org_id: int | None,
    months: int,
    done: str | None = None,
    error: str | None = None,
) -> Response:
    actor = _actor(request, user)
    context: dict[str, Any] = {
        "active": "nav.analytics",
        "csrf_token": user.csrf_token,
        "periods": PERIODS,
        "months": months,
        "done": done,
        "error": error,
    }
    with unit_of_work(read_only=True) as session:
        orgs = analytics.readable_orgs(session, actor=actor)
        if not orgs:
            context["forbidden"] = True
            return render(request, "console/analytics.html", context, status=403)
        top_depth = min(o.depth for o in orgs)
        context["orgs"] = [(o.id, o.name, o.depth - top_depth) for o in orgs]
        try:
            overview = analytics.overview(
                session, actor=actor, org_id=org_id or orgs[0].id, months=months
            )
        except DomainError as exc:
            context.update(error=error_key(exc), org_id=org_id)
            return render(request, "console/analytics.html", context, status=exc.status_code)
    t = translator(request_locale(request))
    context.update(
        org_id=overview.org_id,
        o=overview,
        chart=_chart(overview, t),
        query=urlencode({"org_id": overview.org_id, "months": months}),
    )
    return render(request, "console/analytics.html", context)


@router.get("", response_class=HTMLResponse)
def analytics_page(
    request: Request,
    user: ConsoleStaff,
    org_id: Id | None = None,
    months: Annotated[int, Query(ge=1, le=analytics.MAX_MONTHS)] = 12,
    done: str = "",
    error: str = "",
) -> Response:
    return _page(
        request,
        user,
        org_id=org_id,
        months=months,
        done="analytics.refresh_queued" if done == "refresh" else None,
        error=error if error.startswith("error.") else None,
    )


@router.post("/refresh", response_class=HTMLResponse)
def refresh(
    request: Request,
    user: ConsoleStaff,
    csrf: Annotated[str, Form()] = "",
    org_id: Annotated[Id | None, Form()] = None,
    months: Annotated[int, Form(ge=1, le=analytics.MAX_MONTHS)] = 12,
) -> Response:
    check_csrf(request, user, csrf)
    back: dict[str, object] = {"months": months}
    if org_id:
        back["org_id"] = org_id
    try:
        with unit_of_work() as session:
            analytics.request_refresh(session, actor=_actor(request, user))
    except DomainError as exc:
        back["error"] = error_key(exc)
    else:
        back["done"] = "refresh"
    return RedirectResponse(f"/console/analytics?{urlencode(back)}", status_code=303)


@router.get("/{figure_set}.xlsx")
def export(
    request: Request,
    user: ConsoleStaff,
    figure_set: Literal["monthly", "benefits", "orgs", "activities"],
    org_id: Id,
    months: Annotated[int, Query(ge=1, le=analytics.MAX_MONTHS)] = 12,
) -> Response:
    with unit_of_work(read_only=True) as session:
        overview = analytics.overview(
            session, actor=_actor(request, user), org_id=org_id, months=months, activity_limit=None
        )
    return xlsx.attachment(
        analytics.to_xlsx(overview, figure_set), f"analytics-{org_id}-{figure_set}.xlsx"
    )

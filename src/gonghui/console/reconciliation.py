"""Console: the daily reconciliation with WeChat Pay, for platform admins (the merchant
account is the deployment's): the recent reports, one day's differences, a run again."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gonghui import xlsx
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.operations import service as operations
from gonghui.reconciliation import service as reconciliation
from gonghui.web.errors import error_key
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/reconciliation", include_in_schema=False)


def _page(request: Request, user: PageUser, day: date | None = None, **extra: Any) -> Response:
    context: dict[str, Any] = {"active": "nav.reconciliation", "csrf_token": user.csrf_token}
    context.update(extra)
    with unit_of_work(read_only=True) as session:
        reports = reconciliation.reports(session)
        shown = day or (reports[0].day if reports else None)
        report, items = reconciliation.report_of(session, day=shown) if shown else (None, [])
    context.update(reports=reports, report=report, items=items)
    return render(request, "console/reconciliation.html", context)


@router.get("", response_class=HTMLResponse)
def reconciliation_page(
    request: Request, user: ConsoleStaff, day: date | None = None, queued: str | None = None
) -> Response:
    return _page(request, user, day, queued=queued)


@router.post("", response_class=HTMLResponse)
def run_again(
    request: Request,
    user: ConsoleStaff,
    day: Annotated[date, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user, csrf)
    operations.require_operator(_actor(request, user))
    try:
        with unit_of_work() as session:
            reconciliation.request_run(session, day=day)
    except DomainError as exc:
        return _page(request, user, error=error_key(exc))
    query = urlencode({"day": day.isoformat(), "queued": day.isoformat()})
    return RedirectResponse(f"/console/reconciliation?{query}", status_code=303)


@router.get("/{day}/differences.xlsx")
def download(request: Request, user: ConsoleStaff, day: date) -> Response:
    operations.require_operator(_actor(request, user))
    with unit_of_work(read_only=True) as session:
        _, items = reconciliation.report_of(session, day=day)
    return xlsx.attachment(reconciliation.to_xlsx(items), f"reconciliation-{day.isoformat()}.xlsx")

"""Published results (结果公示) in the H5: the list of the member's chain's competition
rankings and frozen votes, and one of them in full (see :mod:`gonghui.activities.published`),
reachable after the activity's own page has closed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from gonghui.activities import published
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.h5.access import H5Member, member_of
from gonghui.types import Id
from gonghui.web.errors import error_key
from gonghui.web.templating import render

router = APIRouter()


@router.get("/results", response_class=HTMLResponse)
def results_page(request: Request, user: H5Member, cursor: str | None = None) -> Response:
    context = {"csrf_token": user.csrf_token, "tab": "hub", "continued": bool(cursor)}
    try:
        with unit_of_work(read_only=True) as session:
            page = published.member_results(session, member=member_of(user), cursor=cursor)
    except DomainError as exc:
        context.update(items=[], next_cursor=None, error=error_key(exc))
        return render(request, "h5/results.html", context, status=400)
    context.update(items=page.items, next_cursor=page.next_cursor)
    return render(request, "h5/results.html", context)


@router.get("/results/{activity_id}", response_class=HTMLResponse)
def result_page(request: Request, user: H5Member, activity_id: Id) -> Response:
    context = {"csrf_token": user.csrf_token, "tab": "hub"}
    try:
        with unit_of_work(read_only=True) as session:
            shown = published.member_result(
                session, member=member_of(user), activity_id=activity_id
            )
    except DomainError:
        return render(request, "h5/result.html", {**context, "shown": None}, status=404)
    return render(request, "h5/result.html", {**context, "shown": shown})

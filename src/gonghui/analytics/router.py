"""Org-wide analytics over HTTP: an org subtree's figures, their XLSX exports, and asking
for fresh figures. Staff who hold ``analytics.read`` at the org (or above it) only."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from gonghui import xlsx
from gonghui.analytics import service
from gonghui.analytics.schemas import OverviewRead, RefreshQueued, RefreshRequest
from gonghui.deps import CurrentStaff, SessionDep, WriteSessionDep
from gonghui.types import Id

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

FigureSet = Literal["monthly", "benefits", "orgs", "activities"]
Months = Query(default=12, ge=1, le=service.MAX_MONTHS)


@router.get("/orgs/{org_id}")
def org_overview(
    org_id: Id, staff: CurrentStaff, session: SessionDep, months: int = Months
) -> OverviewRead:
    """The org's subtree over the last ``months`` months, from the scheduled aggregates
    (``computed_at`` says when they were computed)."""
    return OverviewRead.of(service.overview(session, actor=staff, org_id=org_id, months=months))


@router.get("/orgs/{org_id}/{figure_set}.xlsx")
def org_export(
    org_id: Id,
    figure_set: FigureSet,
    staff: CurrentStaff,
    session: SessionDep,
    months: int = Months,
) -> Response:
    overview = service.overview(
        session, actor=staff, org_id=org_id, months=months, activity_limit=None
    )
    return xlsx.attachment(
        service.to_xlsx(overview, figure_set), f"analytics-{org_id}-{figure_set}.xlsx"
    )


@router.post("/refresh", status_code=202)
def refresh(body: RefreshRequest, staff: CurrentStaff, session: WriteSessionDep) -> RefreshQueued:
    """Queue a run of the aggregation job (once a minute per caller)."""
    task_id = service.request_refresh(session, actor=staff, full=body.full)
    return RefreshQueued(task_id=task_id, computed_at=service.computed_at(session))

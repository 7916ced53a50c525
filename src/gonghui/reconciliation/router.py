"""Reconciliation reports for the deployment's operators (platform admins): the WeChat Pay
merchant is the deployment's, so its records are every union's."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from gonghui import xlsx
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.errors import NotFound
from gonghui.operations.service import require_operator
from gonghui.reconciliation import service
from gonghui.reconciliation.models import ReconciliationDifference, ReconciliationReport

router = APIRouter(prefix="/api/v1/reconciliation", tags=["reconciliation"])


class ReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    ok: bool
    checked: int
    differences: int
    error: str | None
    made_at: datetime


class DifferenceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    source: str
    kind: str
    reference: str
    ours_cents: int | None
    theirs_cents: int | None
    note: str


class ReportDetail(ReportRead):
    items: list[DifferenceRead]


class RunRequest(BaseModel):
    day: date


@router.get("/reports")
def list_reports(staff: CurrentStaff, session: SessionDep) -> list[ReportRead]:
    require_operator(staff)
    return [ReportRead.model_validate(r) for r in service.reports(session)]


def _report(
    session: Session, day: date
) -> tuple[ReconciliationReport, list[ReconciliationDifference]]:
    report, items = service.report_of(session, day=day)
    if report is None:
        raise NotFound("reconciliation.not_found", f"no report for {day.isoformat()}")
    return report, items


@router.get("/reports/{day}")
def get_report(day: date, staff: CurrentStaff, session: SessionDep) -> ReportDetail:
    require_operator(staff)
    report, items = _report(session, day)
    return ReportDetail(
        **ReportRead.model_validate(report).model_dump(),
        items=[DifferenceRead.model_validate(d) for d in items],
    )


@router.get("/reports/{day}/differences.xlsx")
def download_report(day: date, staff: CurrentStaff, session: SessionDep) -> Response:
    require_operator(staff)
    _, items = _report(session, day)
    return xlsx.attachment(service.to_xlsx(items), f"reconciliation-{day.isoformat()}.xlsx")


@router.post("/reports", status_code=status.HTTP_202_ACCEPTED)
def run_again(body: RunRequest, staff: CurrentStaff, session: SessionDep) -> dict[str, str]:
    """Compare the day again (queued; the report is replaced when it is done)."""
    require_operator(staff)
    service.request_run(session, day=body.day)
    return {"status": "queued", "day": body.day.isoformat()}

"""Staff export a table's rows as CSV or JSON and import rows into it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from gonghui.baas import dataio
from gonghui.baas.errors import BaasError
from gonghui.baas.schemas import ImportResult
from gonghui.bodylimit import max_body, upload_limit
from gonghui.deps import CurrentStaff, SessionDep, WriteSessionDep
from gonghui.errors import InvalidInput
from gonghui.types import Id

router = APIRouter()


@router.get("/apps/{app_id}/tables/{name}/export")
def export_table(
    app_id: Id,
    name: str,
    staff: CurrentStaff,
    session: WriteSessionDep,
    format: dataio.DataFormat = dataio.DataFormat.CSV,
) -> StreamingResponse:
    chunks = list(dataio.export_rows(session, actor=staff, app_id=app_id, table=name, fmt=format))
    media = "text/csv" if format is dataio.DataFormat.CSV else "application/json"
    return StreamingResponse(
        iter(chunks),
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.{format.value}"'},
    )


@router.post("/apps/{app_id}/tables/{name}/import")
@max_body(upload_limit)
async def import_table(
    app_id: Id,
    name: str,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    format: dataio.DataFormat = dataio.DataFormat.CSV,
) -> ImportResult:
    """The request body is the CSV (with a header row) or JSON array, UTF-8."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(BaasError.INVALID_RECORD, "the data is not UTF-8") from None
    count = await run_in_threadpool(
        lambda: dataio.import_rows(
            session, actor=staff, app_id=app_id, table=name, fmt=format, data=text
        )
    )
    return ImportResult(imported=count)

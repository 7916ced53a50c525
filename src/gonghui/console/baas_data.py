"""The developer portal's data browser: a table's records filtered in the BaaS query
language (``where`` as JSON, parsed by :func:`query.parse_where`), sorted, a page at a
time by cursor; a record's form made from the table's fields (create and edit, refusals
shown by the field they name); import (CSV or XLSX) and export (CSV) of the rows.

The developer acts as the app's server would (:func:`apps.staff_caller`), through the same
query and write services as ``/api/v1/baas/data``.
"""

from __future__ import annotations

import io
import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from gonghui.baas import apps, dataio
from gonghui.baas.errors import BaasError
from gonghui.baas.records import query, write
from gonghui.baas.tables import schema
from gonghui.baas.tables.info import TableInfo
from gonghui.baas.tables.types import FieldType
from gonghui.bodylimit import max_body, upload_limit
from gonghui.console.baas_apps import app_context, problems_of, refusal_of
from gonghui.console.router import ConsoleStaff, _actor
from gonghui.db import unit_of_work
from gonghui.errors import DomainError, InvalidInput
from gonghui.types import Id
from gonghui.web.session import PageUser, check_csrf
from gonghui.web.templating import render

router = APIRouter(prefix="/console/apps/{app_id}/tables/{name}", include_in_schema=False)

PAGE = 20
_LONG = (FieldType.TEXT, FieldType.JSON, FieldType.ARRAY)


def _url(app_id: int, name: str, rest: str = "") -> str:
    return f"/console/apps/{app_id}/tables/{name}{rest}"


def cell(value: Any) -> str:
    """A value as the browser's table and forms show it (JSON for objects and lists)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _data_page(
    request: Request,
    user: PageUser,
    app_id: int,
    name: str,
    *,
    where: str = "",
    sort: str = "",
    cursor: str | None = None,
    imported: int | None = None,
    import_problems: dict[str, str] | None = None,
    import_error: str | None = None,
    done: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    problem: str | None = None
    page: query.Page | None = None
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "overview")
        table = schema.describe_table(session, actor=actor, app_id=app_id, name=name)
        caller = apps.staff_caller(session, actor=actor, app_id=app_id)
        try:
            page = query.list_records(
                session,
                caller=caller,
                table=name,
                where=query.parse_where(where.strip() or None),
                sort=[s.strip() for s in sort.split(",") if s.strip()],
                limit=PAGE,
                cursor=cursor or None,
                count=True,
            )
        except DomainError as exc:
            details = problems_of(request, exc)
            problem = "; ".join(f"{k}: {v}" for k, v in details.items()) or refusal_of(request, exc)
            status = 422
    params = {"where": where, "sort": sort}
    context.update(
        csrf_token=user.csrf_token,
        table=table,
        where=where,
        sort=sort,
        page=page,
        problem=problem,
        cursor=cursor,
        first_url=_url(app_id, name, "/data?" + urlencode(params)),
        next_url=(
            _url(app_id, name, "/data?" + urlencode({**params, "cursor": page.next_cursor}))
            if page and page.next_cursor
            else None
        ),
        cell=cell,
        imported=imported,
        import_problems=import_problems or {},
        import_error=import_error,
        done=done,
    )
    return render(request, "console/baas_data.html", context, status=status)


@router.get("/data", response_class=HTMLResponse)
def data_page(
    request: Request,
    user: ConsoleStaff,
    app_id: Id,
    name: str,
    where: Annotated[str, Query(max_length=8000)] = "",
    sort: Annotated[str, Query(max_length=500)] = "",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    done: str = "",
) -> Response:
    return _data_page(
        request,
        user,
        app_id,
        name,
        where=where,
        sort=sort,
        cursor=cursor,
        done=done if done in ("saved", "deleted") else None,
    )


# -- one record -----------------------------------------------------------------------------


def _record_page(
    request: Request,
    user: PageUser,
    app_id: int,
    name: str,
    record_id: int | None,
    *,
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    actor = _actor(request, user)
    with unit_of_work(read_only=True) as session:
        context = app_context(session, actor, app_id, "overview")
        table = schema.describe_table(session, actor=actor, app_id=app_id, name=name)
        record: dict[str, Any] = {}
        if record_id is not None:
            caller = apps.staff_caller(session, actor=actor, app_id=app_id)
            record = query.get_record(session, caller=caller, table=name, record_id=record_id)
    context.update(
        csrf_token=user.csrf_token,
        table=table,
        record=record,
        record_id=record_id,
        form=form if form is not None else {f.name: cell(record.get(f.name)) for f in table.fields},
        problems=problems or {},
        message=message,
        long_types=[t.value for t in _LONG],
    )
    return render(request, "console/baas_record.html", context, status=status)


@router.get("/data/new", response_class=HTMLResponse)
def new_record_page(request: Request, user: ConsoleStaff, app_id: Id, name: str) -> Response:
    return _record_page(request, user, app_id, name, None)


@router.get("/data/{record_id}", response_class=HTMLResponse)
def record_page(
    request: Request, user: ConsoleStaff, app_id: Id, name: str, record_id: Id
) -> Response:
    return _record_page(request, user, app_id, name, record_id)


def _values(
    request: Request, table: TableInfo, form: FormData
) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """The form's values by field (set), the fields left empty (unset), and the texts that
    are no value of their field's type (by field)."""
    values: dict[str, Any] = {}
    empty: list[str] = []
    problems: dict[str, str] = {}
    for f in table.fields:
        text = str(form.get(f.name, ""))
        if f.type is FieldType.STRING or f.type is FieldType.TEXT:
            text = text.replace("\r\n", "\n")
        try:
            value = dataio.value_from_text(f.type, text, f.name)
        except InvalidInput as exc:
            problems.update(problems_of(request, exc))
            continue
        if value is None:
            empty.append(f.name)
        else:
            values[f.name] = value
    return values, empty, problems


async def _save(
    request: Request, user: PageUser, app_id: int, name: str, record_id: int | None
) -> Response:
    actor = _actor(request, user)
    async with request.form() as form:
        check_csrf(request, user, str(form.get("csrf", "")))
        typed = {k: str(v) for k, v in form.items() if k != "csrf"}
        with unit_of_work(read_only=True) as session:
            table = schema.describe_table(session, actor=actor, app_id=app_id, name=name)
        values, empty, problems = _values(request, table, form)
    if problems:
        return _record_page(
            request, user, app_id, name, record_id, form=typed, problems=problems, status=422
        )

    def write_it() -> None:
        with unit_of_work() as session:
            caller = apps.staff_caller(session, actor=actor, app_id=app_id)
            if record_id is None:
                write.create_records(session, caller=caller, table=name, items=[values])
                return
            ops: dict[str, Any] = {}
            if values:
                ops["set"] = values
            if empty:
                ops["unset"] = empty
            write.update_record(session, caller=caller, table=name, record_id=record_id, ops=ops)

    try:
        await run_in_threadpool(write_it)
    except DomainError as exc:
        found = problems_of(request, exc)
        return _record_page(
            request,
            user,
            app_id,
            name,
            record_id,
            form=typed,
            problems=found,
            message=None if found else refusal_of(request, exc),
            status=exc.status_code,
        )
    return RedirectResponse(_url(app_id, name, "/data?done=saved"), status_code=303)


@router.post("/data/new", response_class=HTMLResponse)
async def create_record(request: Request, user: ConsoleStaff, app_id: Id, name: str) -> Response:
    return await _save(request, user, app_id, name, None)


@router.post("/data/{record_id}", response_class=HTMLResponse)
async def update_record(
    request: Request, user: ConsoleStaff, app_id: Id, name: str, record_id: Id
) -> Response:
    return await _save(request, user, app_id, name, record_id)


@router.post("/data/{record_id}/delete", response_class=HTMLResponse)
async def delete_record(
    request: Request, user: ConsoleStaff, app_id: Id, name: str, record_id: Id
) -> Response:
    actor = _actor(request, user)
    async with request.form() as form:
        check_csrf(request, user, str(form.get("csrf", "")))

    def remove() -> None:
        with unit_of_work() as session:
            caller = apps.staff_caller(session, actor=actor, app_id=app_id)
            write.delete_record(session, caller=caller, table=name, record_id=record_id)

    await run_in_threadpool(remove)
    return RedirectResponse(_url(app_id, name, "/data?done=deleted"), status_code=303)


# -- import and export ------------------------------------------------------------------------


@router.post("/import", response_class=HTMLResponse)
@max_body(upload_limit)
async def import_rows(request: Request, user: ConsoleStaff, app_id: Id, name: str) -> Response:
    """A CSV (UTF-8, a header row of field names) or XLSX file: every row or none."""
    actor = _actor(request, user)
    async with request.form(max_files=1) as form:
        check_csrf(request, user, str(form.get("csrf", "")))
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _data_page(
                request, user, app_id, name, import_error="baasc.import_no_file", status=422
            )
        raw = await upload.read()
        is_xlsx = upload.filename.lower().endswith(".xlsx") or raw.startswith(b"PK\x03\x04")

    def run() -> int:
        if is_xlsx:
            text = dataio.xlsx_as_csv(io.BytesIO(raw))
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise InvalidInput(BaasError.INVALID_RECORD, "the file is not UTF-8") from None
        with unit_of_work() as session:
            return dataio.import_rows(
                session,
                actor=actor,
                app_id=app_id,
                table=name,
                fmt=dataio.DataFormat.CSV,
                data=text,
            )

    try:
        count = await run_in_threadpool(run)
    except DomainError as exc:
        found = problems_of(request, exc)
        return _data_page(
            request,
            user,
            app_id,
            name,
            import_problems=found or {"file": refusal_of(request, exc)},
            status=422,
        )
    return _data_page(request, user, app_id, name, imported=count)


@router.get("/export.csv")
def export_rows(request: Request, user: ConsoleStaff, app_id: Id, name: str) -> Response:
    with unit_of_work() as session:
        chunks = list(
            dataio.export_rows(
                session,
                actor=_actor(request, user),
                app_id=app_id,
                table=name,
                fmt=dataio.DataFormat.CSV,
            )
        )
    return StreamingResponse(
        iter(chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )

"""HTTP: app management for staff (``/api/v1/baas/apps``) and the records API for app
callers (``/api/v1/baas/data``)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gonghui import bodylimit
from gonghui.baas import apps, copy, dataio, files
from gonghui.baas.apps import KeyKind
from gonghui.baas.caller import AppCaller
from gonghui.baas.errors import BaasError
from gonghui.baas.permissions import Caller
from gonghui.baas.records import query, write
from gonghui.baas.schemas import (
    AppCreate,
    AppCreated,
    AppRead,
    AppUpdate,
    FieldChange,
    FieldRead,
    FieldSpec,
    KeyRotated,
    TableCreate,
    TablePermissions,
    TableRead,
)
from gonghui.baas.tables import schema
from gonghui.baas.tables.info import TableInfo
from gonghui.bodylimit import max_body, upload_limit
from gonghui.db import unit_of_work
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.errors import InvalidInput, field_error
from gonghui.settings import get_settings
from gonghui.storage import get_store
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1/baas", tags=["baas"])


def table_read(info: TableInfo, names: dict[int, str] | None = None) -> TableRead:
    return TableRead(
        id=info.id,
        app_id=info.app_id,
        name=info.name,
        version=info.version,
        permissions=info.permissions,
        fields=[
            FieldRead(
                name=f.name,
                type=f.type,
                required=f.required,
                unique=f.unique,
                indexed=f.indexed,
                default=f.default,
                rules=f.rules,
                ref=(names or {}).get(f.ref_table_id) if f.ref_table_id else None,
            )
            for f in info.fields
        ],
    )


def _table_names(tables: list[TableInfo]) -> dict[int, str]:
    return {t.id: t.name for t in tables}


@router.post("/apps", status_code=status.HTTP_201_CREATED)
def create_app(body: AppCreate, staff: CurrentStaff, session: SessionDep) -> AppCreated:
    app, keys = apps.create_app(
        session, actor=staff, org_id=body.org_id, name=body.name, settings=body.settings
    )
    return AppCreated(
        **AppRead.model_validate(app).model_dump(),
        client_key=keys.client_key,
        server_key=keys.server_key,
    )


@router.get("/apps")
def list_apps(staff: CurrentStaff, session: SessionDep, org_id: Id | None = None) -> list[AppRead]:
    return [AppRead.model_validate(a) for a in apps.list_apps(session, actor=staff, org_id=org_id)]


@router.get("/apps/{app_id}")
def get_app(app_id: Id, staff: CurrentStaff, session: SessionDep) -> AppRead:
    return AppRead.model_validate(apps.get_app(session, actor=staff, app_id=app_id))


@router.patch("/apps/{app_id}")
def update_app(app_id: Id, body: AppUpdate, staff: CurrentStaff, session: SessionDep) -> AppRead:
    app = apps.update_app(
        session, actor=staff, app_id=app_id, name=body.name, settings=body.settings
    )
    return AppRead.model_validate(app)


@router.post("/apps/{app_id}/keys/{kind}/rotate")
def rotate_key(app_id: Id, kind: KeyKind, staff: CurrentStaff, session: SessionDep) -> KeyRotated:
    key = apps.rotate_key(session, actor=staff, app_id=app_id, kind=kind)
    return KeyRotated(kind=kind.value, key=key)


@router.get("/apps/{app_id}/tables")
def list_tables(app_id: Id, staff: CurrentStaff, session: SessionDep) -> list[TableRead]:
    tables = schema.list_tables(session, actor=staff, app_id=app_id)
    names = _table_names(tables)
    return [table_read(t, names) for t in tables]


def _read_one(session: SessionDep, staff: CurrentStaff, app_id: Id, info: TableInfo) -> TableRead:
    return table_read(info, _table_names(schema.list_tables(session, actor=staff, app_id=app_id)))


@router.post("/apps/{app_id}/tables", status_code=status.HTTP_201_CREATED)
def create_table(
    app_id: Id, body: TableCreate, staff: CurrentStaff, session: SessionDep
) -> TableRead:
    info = schema.create_table(
        session,
        actor=staff,
        app_id=app_id,
        name=body.name,
        fields=body.fields,
        permissions=body.permissions,
    )
    return _read_one(session, staff, app_id, info)


@router.get("/apps/{app_id}/tables/{name}")
def get_table(app_id: Id, name: str, staff: CurrentStaff, session: SessionDep) -> TableRead:
    info = schema.describe_table(session, actor=staff, app_id=app_id, name=name)
    return _read_one(session, staff, app_id, info)


@router.delete("/apps/{app_id}/tables/{name}", status_code=status.HTTP_204_NO_CONTENT)
def drop_table(
    app_id: Id, name: str, staff: CurrentStaff, session: SessionDep, confirm: bool = False
) -> Response:
    schema.drop_table(session, actor=staff, app_id=app_id, name=name, confirm=confirm)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/apps/{app_id}/tables/{name}/permissions")
def set_permissions(
    app_id: Id, name: str, body: TablePermissions, staff: CurrentStaff, session: SessionDep
) -> TableRead:
    info = schema.set_permissions(
        session, actor=staff, app_id=app_id, name=name, permissions=body.permissions
    )
    return _read_one(session, staff, app_id, info)


@router.post("/apps/{app_id}/tables/{name}/fields", status_code=status.HTTP_201_CREATED)
def add_field(
    app_id: Id, name: str, body: FieldSpec, staff: CurrentStaff, session: SessionDep
) -> TableRead:
    info = schema.add_field(session, actor=staff, app_id=app_id, name=name, spec=body)
    return _read_one(session, staff, app_id, info)


@router.patch("/apps/{app_id}/tables/{name}/fields/{field}")
def change_field(
    app_id: Id, name: str, field: str, body: FieldChange, staff: CurrentStaff, session: SessionDep
) -> TableRead:
    info = schema.change_field(
        session, actor=staff, app_id=app_id, name=name, field_name=field, change=body
    )
    return _read_one(session, staff, app_id, info)


@router.delete("/apps/{app_id}/tables/{name}/fields/{field}")
def drop_field(
    app_id: Id,
    name: str,
    field: str,
    staff: CurrentStaff,
    session: SessionDep,
    confirm: bool = False,
) -> TableRead:
    info = schema.drop_field(
        session, actor=staff, app_id=app_id, name=name, field_name=field, confirm=confirm
    )
    return _read_one(session, staff, app_id, info)


# --- records (app callers) -------------------------------------------------------------
#
# These handlers open their unit of work in their own body instead of taking SessionDep:
# a generator dependency's commit runs later on another worker thread, and under load
# (more concurrent writers than threads) every thread can be waiting for SQLite's write
# lock held by a request whose commit is queued behind them. Committing in the thread
# that took the lock keeps writers moving; the commit still precedes the response.

Json = dict[str, Any]
T = TypeVar("T")


class BulkCreate(BaseModel):
    records: list[Json] = Field(min_length=1, max_length=write.MAX_BULK)


class RecordQuery(BaseModel):
    where: Any = None
    sort: list[str] = Field(default_factory=list, max_length=10)
    fields: list[str] | None = None
    expand: list[str] = Field(default_factory=list, max_length=10)
    limit: Count = 50
    offset: Count = 0
    cursor: str | None = None
    count: bool = False


class RecordPage(BaseModel):
    items: list[Json]
    next_cursor: str | None
    count: int | None


class AggregateQuery(BaseModel):
    where: Any = None
    group_by: list[str] = Field(default_factory=list, max_length=10)
    aggregates: list[Json] = Field(default_factory=lambda: [{"op": "count"}], max_length=20)
    limit: Count = 1000


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v for v in value.split(",") if v]


def _page(page: query.Page) -> RecordPage:
    return RecordPage(items=page.items, next_cursor=page.next_cursor, count=page.count)


# The hot records handlers are async and hand their unit of work to the thread pool
# themselves: FastAPI runs a sync handler on the thread pool and then validates its
# answer there too, two hand-offs per request instead of one. Reads on SQLite skip the
# hand-off (see _read): with list statements prebuilt (records/plans.py) the hand-off
# cost more than the read; in one benchmark run (20,000 rows) get went from 0.16 to 0.30
# of the ping and the filtered list from 0.11 to 0.23.
@router.post("/data/{table}/records", status_code=status.HTTP_201_CREATED)
async def create_record(table: str, caller: AppCaller, body: Annotated[Json, Body()]) -> Json:
    return await run_in_threadpool(_create_one, table, caller, body)


def _create_one(table: str, caller: Caller, body: Json) -> Json:
    with unit_of_work() as session:
        return write.create_records(session, caller=caller, table=table, items=[body])[0]


def _read_now(fn: Callable[[Session], T]) -> T:
    with unit_of_work(read_only=True) as session:
        return fn(session)


async def _read(fn: Callable[[Session], T]) -> T:
    # As db.read: a read of a local SQLite file (never waiting for a writer in WAL mode)
    # runs in the event loop; a PostgreSQL round trip must not block it.
    if get_settings().is_sqlite:
        return _read_now(fn)
    return await run_in_threadpool(_read_now, fn)


@router.post("/data/{table}/records/bulk", status_code=status.HTTP_201_CREATED)
def create_records(table: str, body: BulkCreate, caller: AppCaller) -> list[Json]:
    with unit_of_work() as session:
        return write.create_records(session, caller=caller, table=table, items=body.records)


@router.get("/data/{table}/records")
async def list_records(
    table: str,
    caller: AppCaller,
    where: Annotated[str | None, Query(max_length=8000)] = None,
    sort: str | None = None,
    fields: str | None = None,
    expand: str | None = None,
    limit: Count = 50,
    offset: Count = 0,
    cursor: str | None = None,
    count: bool = False,
) -> RecordPage:
    """``where`` is the JSON filter, URL-encoded; the others are comma-separated."""
    parsed = None
    if where:
        try:
            parsed = json.loads(where)
        except ValueError:
            raise InvalidInput(
                BaasError.INVALID_QUERY,
                "where is not JSON",
                [field_error("where", BaasError.INVALID_QUERY, "not JSON")],
            ) from None
    page = await _read(
        functools.partial(
            query.list_records,
            caller=caller,
            table=table,
            where=parsed,
            sort=_split(sort),
            fields=_split(fields),
            expand=_split(expand),
            limit=limit,
            offset=offset,
            cursor=cursor,
            count=count,
        ),
    )
    return _page(page)


@router.post("/data/{table}/query")
def query_records(table: str, body: RecordQuery, caller: AppCaller) -> RecordPage:
    with unit_of_work(read_only=True) as session:
        page = query.list_records(session, caller=caller, table=table, **body.model_dump())
        return _page(page)


@router.post("/data/{table}/aggregate")
def aggregate(table: str, body: AggregateQuery, caller: AppCaller) -> list[Json]:
    with unit_of_work(read_only=True) as session:
        return query.aggregate(session, caller=caller, table=table, **body.model_dump())


@router.get("/data/{table}/records/{record_id}")
async def get_record(
    table: str,
    record_id: Id,
    caller: AppCaller,
    fields: str | None = None,
    expand: str | None = None,
) -> Json:
    return await _read(
        functools.partial(
            query.get_record,
            caller=caller,
            table=table,
            record_id=record_id,
            fields=_split(fields),
            expand=_split(expand),
        ),
    )


@router.patch("/data/{table}/records/{record_id}")
def update_record(
    table: str,
    record_id: Id,
    caller: AppCaller,
    body: Annotated[Json, Body()],
) -> Json:
    with unit_of_work() as session:
        return write.update_record(
            session, caller=caller, table=table, record_id=record_id, ops=body
        )


@router.delete("/data/{table}/records/{record_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_record(table: str, record_id: Id, caller: AppCaller) -> Response:
    with unit_of_work() as session:
        write.delete_record(session, caller=caller, table=table, record_id=record_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/data/{table}/records/{record_id}/acl")
def set_acl(
    table: str,
    record_id: Id,
    caller: AppCaller,
    body: Annotated[dict[str, list[int]], Body()],
) -> dict[str, list[int]]:
    with unit_of_work() as session:
        return write.set_acl(session, caller=caller, table=table, record_id=record_id, acl=body)


# --- copy, templates, diffs ----------------------------------------------------------


class AppCopy(BaseModel):
    org_id: Id
    name: str = Field(min_length=1, max_length=100)


class TemplateImport(AppCopy):
    template: Json


def _created(app: Any, keys: apps.AppKeys) -> AppCreated:
    return AppCreated(
        **AppRead.model_validate(app).model_dump(),
        client_key=keys.client_key,
        server_key=keys.server_key,
    )


@router.get("/apps/{app_id}/template")
def export_template(app_id: Id, staff: CurrentStaff, session: SessionDep) -> Json:
    return copy.export_template(session, actor=staff, app_id=app_id)


@router.post("/apps/import", status_code=status.HTTP_201_CREATED)
def import_template(body: TemplateImport, staff: CurrentStaff, session: SessionDep) -> AppCreated:
    app, keys = copy.import_template(
        session, actor=staff, org_id=body.org_id, name=body.name, template=body.template
    )
    return _created(app, keys)


@router.post("/apps/{app_id}/copy", status_code=status.HTTP_201_CREATED)
def copy_app(app_id: Id, body: AppCopy, staff: CurrentStaff, session: SessionDep) -> AppCreated:
    app, keys = copy.copy_app(
        session, actor=staff, app_id=app_id, org_id=body.org_id, name=body.name
    )
    return _created(app, keys)


@router.get("/apps/{app_id}/diff/{other_app_id}")
def diff_apps(app_id: Id, other_app_id: Id, staff: CurrentStaff, session: SessionDep) -> list[Json]:
    return copy.diff_apps(session, actor=staff, app_id=app_id, other_app_id=other_app_id)


# --- files ---------------------------------------------------------------------------


class FileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    folder: str
    name: str
    content_type: str
    size: int
    sha256: str
    has_thumbnail: bool = False
    created_by: int | None
    created_at: datetime


class FileUrl(BaseModel):
    url: str
    expires_at: int


def _file_read(row: Any) -> FileRead:
    read = FileRead.model_validate(row)
    return read.model_copy(update={"has_thumbnail": row.thumbnail_key is not None})


@router.post("/files", status_code=status.HTTP_201_CREATED)
@max_body(upload_limit)
async def upload_file(request: Request, caller: AppCaller) -> FileRead:
    """Multipart form: ``file`` and an optional ``folder``."""

    def limit() -> int:
        with unit_of_work(read_only=True) as session:
            return files.upload_limit(session, caller=caller)

    # The app's own file limit, known before the body is read: a larger declared body is
    # refused at once, a streamed one where it passes the limit.
    bodylimit.lower(request.scope, await run_in_threadpool(limit) + bodylimit.MULTIPART_FRAMING)
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        folder = form.get("folder") or ""
        if not isinstance(upload, UploadFile) or not isinstance(folder, str):
            raise InvalidInput(
                BaasError.INVALID_RECORD,
                "send the file as multipart field 'file'",
                [field_error("file", BaasError.INVALID_RECORD, "missing")],
            )

        def store() -> FileRead:
            with unit_of_work() as session:
                row = files.upload(
                    session,
                    caller=caller,
                    stream=upload.file,
                    name=upload.filename or "",
                    folder=folder,
                    claimed_type=upload.content_type,
                )
                return _file_read(row)

        return await run_in_threadpool(store)


@router.get("/files")
def list_files(caller: AppCaller, folder: str | None = None) -> list[FileRead]:
    with unit_of_work(read_only=True) as session:
        return [_file_read(r) for r in files.list_files(session, caller=caller, folder=folder)]


@router.get("/files/{file_id}")
def get_file(file_id: Id, caller: AppCaller) -> FileRead:
    with unit_of_work(read_only=True) as session:
        return _file_read(files.get_file(session, caller=caller, file_id=file_id))


@router.get("/files/{file_id}/url")
def file_url(
    file_id: Id,
    caller: AppCaller,
    thumbnail: bool = False,
    ttl_s: int = files.DEFAULT_URL_TTL_S,
) -> FileUrl:
    with unit_of_work(read_only=True) as session:
        signed = files.signed_url(
            session, caller=caller, file_id=file_id, thumbnail=thumbnail, ttl_s=ttl_s
        )
        return FileUrl(url=signed.url, expires_at=signed.expires_at)


@router.get("/files/{file_id}/content")
def file_content(file_id: Id, variant: str, exp: int, sig: str) -> StreamingResponse:
    """The bytes behind a signed URL; no key needed, the signature is the permission."""
    with unit_of_work(read_only=True) as session:
        download = files.open_signed(
            session, file_id=file_id, variant=variant, expires=exp, sig=sig
        )
        return StreamingResponse(
            get_store().iter_bytes(download.key),
            media_type=download.content_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(download.name)}",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=60",
            },
        )


@router.delete("/files/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(file_id: Id, caller: AppCaller) -> Response:
    with unit_of_work() as session:
        files.delete_file(session, caller=caller, file_id=file_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- table data import / export -------------------------------------------------------


@router.get("/apps/{app_id}/tables/{name}/export")
def export_table(
    app_id: Id,
    name: str,
    staff: CurrentStaff,
    session: SessionDep,
    format: dataio.DataFormat = dataio.DataFormat.CSV,
) -> StreamingResponse:
    chunks = list(dataio.export_rows(session, actor=staff, app_id=app_id, table=name, fmt=format))
    media = "text/csv" if format is dataio.DataFormat.CSV else "application/json"
    return StreamingResponse(
        iter(chunks),
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.{format.value}"'},
    )


class ImportResult(BaseModel):
    imported: int


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

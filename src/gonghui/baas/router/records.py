"""The records API for app callers (``/api/v1/baas/data``): create, query, aggregate,
read, update, delete and share records.

These handlers open their unit of work in their own body instead of taking SessionDep:
a generator dependency's commit runs later on another worker thread, and under load
(more concurrent writers than threads) every thread can be waiting for SQLite's write
lock held by a request whose commit is queued behind them. Committing in the thread
that took the lock keeps writers moving; the commit still precedes the response.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Body, Query, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gonghui.baas.caller import AppCaller
from gonghui.baas.records import query, write
from gonghui.baas.schemas import AggregateQuery, BulkCreate, Json, RecordPage, RecordQuery
from gonghui.baas.tables import info as infos
from gonghui.db import bounded_read, driver_read, get_engine, read_short, unit_of_work
from gonghui.types import Count, Id

router = APIRouter()

T = TypeVar("T")


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v for v in value.split(",") if v]


def _page(page: query.Page) -> RecordPage:
    return RecordPage(items=page.items, next_cursor=page.next_cursor, count=page.count)


# The hot records handlers are async: FastAPI runs a sync handler on the thread pool and
# then validates its answer there too, two hand-offs per request instead of one. A create
# is checked in the event loop and written by the hot writer (records.write.create_record).
# A get by id on SQLite skips the hand-off (see _read_by_id): one primary-key read of a
# local file (never waiting for a writer in WAL mode) costs less than the hand-off; in one
# benchmark run (20,000 rows) get went from 0.16 to 0.30 of the ping. A list runs in the
# event loop within a budget of SQLite steps (db.read_short), else on the thread pool: its
# filter is the developer's, and an expensive one must not stall everyone else.
#
# A get, and a list whose statement is shared (records/plans.py), read on the driver's
# connection (gonghui.db.driver_unit and Prepared) when this process holds the table's
# description and nothing beyond the table is read (no expand): no ORM session, no Core
# execution per statement. Anything else reads through a session as before.
@router.post("/data/{table}/records", status_code=status.HTTP_201_CREATED)
async def create_record(table: str, caller: AppCaller, body: Annotated[Json, Body()]) -> Json:
    return await write.create_record(caller=caller, table=table, item=body)


def _read(fn: Callable[[Session], T]) -> T:
    with unit_of_work(read_only=True) as session:
        return fn(session)


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
    parsed = query.parse_where(where)
    sorted_by, chosen, expanded = _split(sort), _split(fields), _split(expand)
    info = infos.cached(app_id=caller.app_id, name=table)
    planned = None
    if info is not None and not expanded:
        planned = query.find_plan(
            dialect=get_engine().dialect.name,
            caller=caller,
            info=info,
            where=parsed,
            sort=sorted_by,
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
    if info is not None and planned is not None:
        return _page(
            await read_short(
                functools.partial(
                    query.planned_page,
                    info=info,
                    planned=planned,
                    fields=chosen,
                    limit=limit,
                    offset=offset,
                    count=count,
                )
            )
        )
    page = await run_in_threadpool(
        _read,
        functools.partial(
            query.list_records,
            caller=caller,
            table=table,
            where=parsed,
            sort=sorted_by,
            fields=chosen,
            expand=expanded,
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
    chosen, expanded = _split(fields), _split(expand)
    info = infos.cached(app_id=caller.app_id, name=table)
    if info is not None and not expanded:
        return await bounded_read(
            functools.partial(
                driver_read,
                functools.partial(
                    query.record_by_id,
                    caller=caller,
                    info=info,
                    record_id=record_id,
                    fields=chosen,
                ),
            )
        )
    return await bounded_read(
        functools.partial(
            _read,
            functools.partial(
                query.get_record,
                caller=caller,
                table=table,
                record_id=record_id,
                fields=chosen,
                expand=expanded,
            ),
        )
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
    body: Annotated[dict[str, list[Id]], Body()],
) -> dict[str, list[int]]:
    with unit_of_work() as session:
        return write.set_acl(session, caller=caller, table=table, record_id=record_id, acl=body)

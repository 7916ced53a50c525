"""Staff define an app's tables: create, describe, drop, permissions and fields."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gonghui.baas.schemas import (
    FieldChange,
    FieldRead,
    FieldSpec,
    TableCreate,
    TablePermissions,
    TableRead,
)
from gonghui.baas.tables import schema
from gonghui.baas.tables.info import TableInfo
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.types import Id

router = APIRouter()


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

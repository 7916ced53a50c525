"""Copying an app, exporting and importing it as a template, and comparing two apps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from gonghui.baas import apps, copy
from gonghui.baas.schemas import AppCopy, AppCreated, AppRead, Json, TemplateImport
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.types import Id

router = APIRouter()


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

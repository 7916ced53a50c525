"""Staff manage apps and rotate their keys (``/api/v1/baas/apps``)."""

from __future__ import annotations

from fastapi import APIRouter, status

from gonghui.baas import apps
from gonghui.baas.apps import KeyKind
from gonghui.baas.schemas import AppCreate, AppCreated, AppRead, AppUpdate, KeyRotated
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.types import Id

router = APIRouter()


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

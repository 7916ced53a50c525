"""Operators' API for saved activity templates: save, list, read, rename, delete, and a
draft activity from one."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gonghui.activities.models import ActivityKind
from gonghui.activities.router import read as read_activity
from gonghui.activities.schemas import ActivityRead
from gonghui.activities.templates import service
from gonghui.activities.templates.schemas import (
    TemplateRead,
    TemplateRename,
    TemplateSave,
    TemplateUse,
)
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1/activity-templates", tags=["activity templates"])


@router.post("", status_code=status.HTTP_201_CREATED)
def save_template(body: TemplateSave, staff: CurrentStaff, session: SessionDep) -> TemplateRead:
    template = service.save_template(
        session, actor=staff, activity_id=body.activity_id, name=body.name
    )
    return TemplateRead.model_validate(template)


@router.get("")
def list_templates(
    staff: CurrentStaff,
    session: SessionDep,
    org_id: Id | None = None,
    kind: ActivityKind | None = None,
    before: Id | None = None,
    limit: Count = 100,
) -> list[TemplateRead]:
    """The templates of the caller's orgs and of every org above them, newest first; with
    ``org_id``, that org's own (one the caller manages or one above them)."""
    rows = service.list_templates(
        session, actor=staff, org_id=org_id, kind=kind, before=before, limit=limit
    )
    return [TemplateRead.model_validate(t) for t in rows]


@router.get("/{template_id}")
def get_template(template_id: Id, staff: CurrentStaff, session: SessionDep) -> TemplateRead:
    return TemplateRead.model_validate(
        service.get_template(session, actor=staff, template_id=template_id)
    )


@router.patch("/{template_id}")
def rename_template(
    template_id: Id, body: TemplateRename, staff: CurrentStaff, session: SessionDep
) -> TemplateRead:
    template = service.rename_template(
        session, actor=staff, template_id=template_id, name=body.name
    )
    return TemplateRead.model_validate(template)


@router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_template(template_id: Id, staff: CurrentStaff, session: SessionDep) -> Response:
    service.delete_template(session, actor=staff, template_id=template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{template_id}/activities", status_code=status.HTTP_201_CREATED)
def create_activity(
    template_id: Id, body: TemplateUse, staff: CurrentStaff, session: SessionDep
) -> ActivityRead:
    """A draft activity in ``org_id`` from the template."""
    activity = service.create_from_template(
        session,
        actor=staff,
        template_id=template_id,
        org_id=body.org_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        title=body.title,
        form=body.form,
    )
    return read_activity(activity)

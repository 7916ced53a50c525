"""Operators' activity API: create, edit, publish, pause, resume, end, archive, clone,
repeat."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from gonghui import db
from gonghui.activities import hub, published, service, stats
from gonghui.activities.models import Activity
from gonghui.activities.schemas import (
    ActivityCreate,
    ActivityRead,
    ActivityUpdate,
    HubItem,
    HubPage,
    PublishedPage,
    TeaserPage,
)
from gonghui.deps import CurrentMember, CurrentStaff, SessionDep
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1/activities", tags=["activities"])


class CloneRequest(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def read(activity: Activity) -> ActivityRead:
    return ActivityRead.model_validate(
        {
            **{c: getattr(activity, c) for c in ActivityRead.model_fields if hasattr(activity, c)},
            "status": service.effective_status(activity),
        }
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_activity(body: ActivityCreate, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    return read(service.create_activity(session, actor=staff, data=body))


@router.get("")
def list_activities(
    staff: CurrentStaff, session: SessionDep, org_id: Id | None = None
) -> list[ActivityRead]:
    return [read(a) for a in service.list_activities(session, actor=staff, org_id=org_id)]


@router.get("/{activity_id}")
def get_activity(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    return read(service.get_activity(session, actor=staff, activity_id=activity_id))


@router.patch("/{activity_id}")
def update_activity(
    activity_id: Id, body: ActivityUpdate, staff: CurrentStaff, session: SessionDep
) -> ActivityRead:
    return read(service.update_activity(session, actor=staff, activity_id=activity_id, data=body))


@router.post("/{activity_id}/publish")
def publish(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    return read(service.publish(session, actor=staff, activity_id=activity_id))


@router.post("/{activity_id}/pause")
def pause(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    return read(service.pause(session, actor=staff, activity_id=activity_id))


@router.post("/{activity_id}/resume")
def resume(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    return read(service.resume(session, actor=staff, activity_id=activity_id))


@router.post("/{activity_id}/end")
def end(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    return read(service.end(session, actor=staff, activity_id=activity_id))


@router.post("/{activity_id}/archive")
def archive(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    return read(service.archive(session, actor=staff, activity_id=activity_id))


@router.post("/{activity_id}/clone", status_code=status.HTTP_201_CREATED)
def clone(
    activity_id: Id, staff: CurrentStaff, session: SessionDep, body: CloneRequest | None = None
) -> ActivityRead:
    body = body or CloneRequest()
    copy = service.clone(
        session,
        actor=staff,
        activity_id=activity_id,
        title=body.title,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    return read(copy)


@router.post("/{activity_id}/repeat", status_code=status.HTTP_201_CREATED)
def repeat(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> ActivityRead:
    """ "Repeat last month's": a draft copy one month later, as long (see ``service.repeat``)."""
    return read(service.repeat(session, actor=staff, activity_id=activity_id))


hub_router = APIRouter(prefix="/api/v1", tags=["hub"])


@hub_router.get("/hub", response_model=HubPage)
async def get_hub(member: CurrentMember, cursor: str | None = None, limit: Count = 20) -> Response:
    """Live and upcoming activities from the member's union and every union above it."""
    # A hot read: its own short read transaction (db.read), and the page serialised once.
    page = await db.read(
        functools.partial(hub.member_hub, member=member, cursor=cursor, limit=limit)
    )
    return Response(page.model_dump_json(), media_type="application/json")


@hub_router.get("/hub/activities/{activity_id}")
async def get_hub_activity(activity_id: Id, member: CurrentMember) -> HubItem:
    """One activity of the member's hub, with the member's own state."""
    return await db.read(
        functools.partial(hub.member_activity, member=member, activity_id=activity_id)
    )


@hub_router.get("/hub/results")
def get_hub_results(
    member: CurrentMember, session: SessionDep, cursor: str | None = None, limit: Count = 20
) -> PublishedPage:
    """Published results (competition rankings, frozen votes) of the member's union and
    every union above it, newest first, each with its first lines."""
    return published.member_results(session, member=member, cursor=cursor, limit=limit)


@hub_router.get("/public/activities")
async def get_teasers(
    org_id: Id | None = None, cursor: str | None = None, limit: Count = 20
) -> TeaserPage:
    """For visitors who have not signed in."""
    return await db.read(functools.partial(hub.teasers, org_id=org_id, cursor=cursor, limit=limit))


@router.get("/{activity_id}/stats")
def get_stats(activity_id: Id, staff: CurrentStaff, session: SessionDep) -> dict[str, Any]:
    """Draws, stock left per prize, quiz passes and budget spent, for watching it live."""
    return stats.activity_stats(session, actor=staff, activity_id=activity_id)

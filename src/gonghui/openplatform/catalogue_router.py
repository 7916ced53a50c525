"""The service catalogue's staff API: a client's card, its icon, and usage by category and
union (``catalogue.py`` holds the rules; the member's side is the H5's ``/h5/services``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from gonghui.bodylimit import MULTIPART_FRAMING, max_body
from gonghui.deps import CurrentStaff, SessionDep
from gonghui.errors import NotFound
from gonghui.openplatform import catalogue
from gonghui.openplatform.catalogue import Category
from gonghui.openplatform.errors import OpenPlatformError
from gonghui.openplatform.models import ServiceCard
from gonghui.types import Id

router = APIRouter(tags=["open platform"])


class ServiceWrite(BaseModel):
    category: Category
    title: str = Field(min_length=1, max_length=40)
    description: str = Field(default="", max_length=300)
    launch_uri: str = Field(
        max_length=1000,
        description="the provider's third-party-initiated login URI (OpenID Connect Core §4), "
        "on the origin of one of the client's redirect URIs",
    )
    shown_to: list[Id] = Field(
        default_factory=list,
        max_length=100,
        description="orgs within the client's subtree whose members see it; empty: all of it",
    )
    listed: bool = False


class ServiceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_pk: int
    org_id: int
    category: str
    title: str
    description: str
    launch_uri: str
    shown_to: list[int]
    listed: bool
    has_icon: bool
    updated_at: datetime


class ServiceUsageRead(BaseModel):
    category: str
    org_id: int
    org_name: str
    opens: int


def _read(card: ServiceCard) -> ServiceRead:
    return ServiceRead.model_validate(
        {**{k: getattr(card, k) for k in ServiceRead.model_fields if k != "has_icon"},
         "has_icon": card.icon_key is not None}
    )  # fmt: skip


@router.put("/api/v1/oauth-clients/{client_pk}/service")
def set_service(
    client_pk: Id, body: ServiceWrite, staff: CurrentStaff, session: SessionDep
) -> ServiceRead:
    """The client's card in the members' service catalogue (listed: members see it)."""
    card = catalogue.set_card(session, actor=staff, client_pk=client_pk, **body.model_dump())
    return _read(card)


@router.get("/api/v1/oauth-clients/{client_pk}/service")
def get_service(client_pk: Id, staff: CurrentStaff, session: SessionDep) -> ServiceRead:
    card = catalogue.card_of(session, actor=staff, client_pk=client_pk)
    if card is None:
        raise NotFound(OpenPlatformError.SERVICE_NOT_FOUND, "the client has no card")
    return _read(card)


@router.put("/api/v1/oauth-clients/{client_pk}/service/icon")
@max_body(catalogue.ICON_MAX_BYTES + MULTIPART_FRAMING)
def set_service_icon(
    client_pk: Id, file: Annotated[UploadFile, File()], staff: CurrentStaff, session: SessionDep
) -> ServiceRead:
    """The card's icon: JPEG, PNG or WebP, at most 256 KiB."""
    data = file.file.read(catalogue.ICON_MAX_BYTES + 1)
    return _read(catalogue.set_icon(session, actor=staff, client_pk=client_pk, data=data))


@router.get("/api/v1/open-platform/services/usage")
def service_usage(
    staff: CurrentStaff, session: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[ServiceUsageRead]:
    """Opens of the caller's services over the last ``days``, by category and the union of
    the members who opened them."""
    return [
        ServiceUsageRead(**vars(row)) for row in catalogue.usage(session, actor=staff, days=days)
    ]

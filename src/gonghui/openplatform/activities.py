"""The open API's ``activities:read``: the published activities of the client's org and
the unions below it (never drafts, never another subtree's), newest first, a page at a
time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.activities.models import Activity, ActivityStatus
from gonghui.activities.service import status_at
from gonghui.clock import now
from gonghui.openplatform.models import Client
from gonghui.orgs.models import Org
from gonghui.tenancy import within

PAGE_MAX = 100


@dataclass(frozen=True)
class OpenActivity:
    id: int
    kind: str
    title: str
    org_code: str
    org_name: str
    status: str
    starts_at: datetime
    ends_at: datetime


def published(
    session: Session, *, client_pk: int, before: int | None = None, limit: int = 20
) -> list[OpenActivity]:
    """The client's subtree's activities that members can see or have seen."""
    client_org = session.execute(
        select(Org.path).join(Client, Client.org_id == Org.id).where(Client.id == client_pk)
    ).scalar_one()
    stmt = (
        select(Activity, Org.code, Org.name)
        .join(Org, Org.id == Activity.org_id)
        .where(
            within(Org.path, client_org),
            Activity.status.not_in([ActivityStatus.DRAFT, ActivityStatus.ARCHIVED]),
        )
        .order_by(Activity.id.desc())
        .limit(min(max(limit, 1), PAGE_MAX))
    )
    if before is not None:
        stmt = stmt.where(Activity.id < before)
    at = now()
    return [
        OpenActivity(
            a.id,
            str(a.kind),
            a.title,
            code,
            name,
            str(status_at(a.status, a.starts_at, a.ends_at, at)),
            a.starts_at,
            a.ends_at,
        )
        for a, code, name in session.execute(stmt)
    ]

"""An org's delivery rules as they apply: its own, else its nearest ancestor's, else the
platform's (no quiet hours, five messages a day)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.db import once_per_session
from gonghui.notifications import templates
from gonghui.notifications.models import OrgSettings

DEFAULT_DAILY_CAP = 5


@dataclass(frozen=True)
class Rules:
    """An org's delivery rules as they apply (its own or the nearest ancestor's)."""

    quiet_start_minute: int | None
    quiet_end_minute: int | None
    daily_cap: int
    org_id: int | None = None


def rules(session: Session, org_id: int) -> Rules:
    ids = templates.chain(session, org_id)
    rows = {
        r.org_id: r for r in session.scalars(select(OrgSettings).where(OrgSettings.org_id.in_(ids)))
    }
    for org in ids:
        row = rows.get(org)
        if row is not None:
            return Rules(row.quiet_start_minute, row.quiet_end_minute, row.daily_cap, org)
    return Rules(None, None, DEFAULT_DAILY_CAP)


def of_org(session: Session, org_id: int) -> Rules:
    """:func:`rules`, read once per session (a group of deliveries)."""
    return once_per_session(session, "notifications.rules", org_id, lambda: rules(session, org_id))

"""The catalog: every open activity (published, not paused, not over) with its org's name,
as the hub and the teasers list them, held in each process between changes.

Every flush that writes an activity or an org records a change of the topic ``catalog``
(a session event in :mod:`gonghui.activities.models`, so no service can forget it), and
the change feed (:mod:`gonghui.invalidation`) drops this process's copy: at the commit in
the process that made it, within ``invalidation.FEED_MAX_LAG_S`` in every other. So a
publish, pause, end or edit, or an org renamed or archived, shows in the next hub request
of the process that made it and within about a second in every other, and a hub request
normally reads nothing but the member's own state. Time moves the rest (live at the start,
gone at the end): readers filter the copy by the clock on each request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from gonghui import invalidation
from gonghui.activities.models import CATALOG_TOPIC, Activity, ActivityKind, ActivityStatus
from gonghui.activities.service import status_at
from gonghui.clock import now
from gonghui.orgs.models import Org


@dataclass(frozen=True, slots=True)
class Listing:
    """What the hub needs of an open activity, read once per catalog change."""

    id: int
    org_id: int
    org_name: str
    kind: ActivityKind
    title: str
    status: ActivityStatus
    starts_at: datetime
    ends_at: datetime
    eligibility: dict[str, Any]
    # Free draws a member gets per day (lottery kinds), else None.
    free_draws_per_day: int | None
    # The fields a hub item shows as they are (the rest depends on the clock and member).
    card: dict[str, Any] = field(compare=False)

    def status_at(self, instant: datetime) -> ActivityStatus:
        return status_at(self.status, self.starts_at, self.ends_at, instant)


@dataclass
class _Copy:
    loaded_at: datetime
    listings: list[Listing]
    by_chain: dict[tuple[int, ...], list[Listing]] = field(default_factory=dict)


_copy: _Copy | None = None
# Counts the changes seen: a copy loaded while one came in is not kept.
_generation = 0
_lock = threading.Lock()


def _drop(_change: invalidation.Change | None = None) -> None:
    global _copy, _generation
    with _lock:
        _copy = None
        _generation += 1


invalidation.subscribe(CATALOG_TOPIC, on_change=_drop, forget=_drop)


def _load(connection: Connection, at: datetime) -> _Copy:
    rows = connection.execute(
        select(
            Activity.id,
            Activity.org_id,
            Org.name,
            Activity.kind,
            Activity.title,
            Activity.status,
            Activity.starts_at,
            Activity.ends_at,
            Activity.eligibility,
            Activity.config,
        )
        .join(Org, Org.id == Activity.org_id)
        .where(
            Activity.status.in_([ActivityStatus.SCHEDULED, ActivityStatus.LIVE]),
            Activity.ends_at > at,
            Org.archived_at.is_(None),
        )
        .order_by(Activity.starts_at, Activity.id)
    )
    listings = []
    for row in rows:
        lottery = row.config.get("lottery")
        kind = ActivityKind(row.kind)
        listings.append(
            Listing(
                id=row.id,
                org_id=row.org_id,
                org_name=row.name,
                kind=kind,
                title=row.title,
                status=ActivityStatus(row.status),
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                eligibility=row.eligibility or {},
                free_draws_per_day=None
                if lottery is None
                else int(lottery.get("free_draws_per_day", 1)),
                card={
                    "id": row.id,
                    "org_id": row.org_id,
                    "org_name": row.name,
                    "kind": kind,
                    "title": row.title,
                    "starts_at": row.starts_at,
                    "ends_at": row.ends_at,
                },
            )
        )
    return _Copy(loaded_at=at, listings=listings)


def open_activities(connection: Connection, *, chain: tuple[int, ...] | None) -> list[Listing]:
    """Open activities of the orgs in ``chain`` (None: of every org), earliest start first.

    Some may have ended since the copy was read: callers filter by the clock."""
    global _copy
    at = now()
    copy = _copy
    if copy is None or not invalidation.current():
        invalidation.catch_up(connection)
        copy = _copy
    # A copy read at a later clock (tests move it back) may lack what is open now.
    if copy is None or at < copy.loaded_at:
        generation = _generation  # before the read: a change during it voids the copy
        copy = _load(connection, at)
        with _lock:
            if generation == _generation:
                _copy = copy
    if chain is None:
        return copy.listings
    listed = copy.by_chain.get(chain)
    if listed is None:
        orgs = set(chain)
        listed = [a for a in copy.listings if a.org_id in orgs]
        copy.by_chain[chain] = listed
    return listed

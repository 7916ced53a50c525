"""The catalog: every open activity (published, not paused, not over) with its org's name,
as the hub and the teasers list them, held in each process between changes.

Every flush that writes an activity or an org gives the one ``activities_catalog_stamp``
row a new random value in the same transaction (a session event in
:mod:`gonghui.activities.models`, so no service can forget it). A reader compares the stamp
with its copy's (one primary-key read) when its last comparison is over MAX_LAG_S old, and
reloads when they differ; a change committed in this process drops the copy at once. So a
publish, pause, end or edit, or an org renamed or archived, shows in the next hub request
of the process that made it and within MAX_LAG_S in every other, and a hub request
normally reads nothing but the member's own state. Time moves the rest (live at the start,
gone at the end): readers filter the copy by the clock on each request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from gonghui.activities.models import Activity, ActivityKind, ActivityStatus, CatalogStamp
from gonghui.activities.service import status_at
from gonghui.clock import now
from gonghui.orgs.models import Org

_read_stamp = select(CatalogStamp.stamp).where(CatalogStamp.id == CatalogStamp.ROW)


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


# How stale another process's change may be when a reader uses its copy.
MAX_LAG_S = 1.0


@dataclass
class _Copy:
    stamp: str
    loaded_at: datetime
    listings: list[Listing]
    by_chain: dict[tuple[int, ...], list[Listing]] = field(default_factory=dict)
    # When the stamp was last found to be this copy's (time.monotonic()), and how many of
    # this process's own catalog changes had committed before that read.
    checked_at: float = 0.0
    changes_seen: int = 0

    def current(self) -> bool:
        return self.changes_seen == _changes_here and time.monotonic() - self.checked_at <= (
            MAX_LAG_S
        )


_copy: _Copy | None = None
_changes_here = 0
_lock = threading.Lock()


def forget() -> None:
    """Drop this process's copy (tests that replace the database)."""
    global _copy
    with _lock:
        _copy = None


def changed_here() -> None:
    """A transaction of this process that changed the catalog has committed."""
    global _changes_here
    with _lock:
        _changes_here += 1


def _load(connection: Connection, stamp: str, at: datetime) -> _Copy:
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
    return _Copy(stamp=stamp, loaded_at=at, listings=listings)


def open_activities(connection: Connection, *, chain: tuple[int, ...] | None) -> list[Listing]:
    """Open activities of the orgs in ``chain`` (None: of every org), earliest start first.

    Some may have ended since the copy was read: callers filter by the clock."""
    global _copy
    at = now()
    copy = _copy
    # A copy read at a later clock (tests move it back) may lack what is open now.
    if copy is None or at < copy.loaded_at or not copy.current():
        changes, checked_at = _changes_here, time.monotonic()  # before the stamp is read
        stamp = connection.execute(_read_stamp).scalar()
        if copy is None or stamp is None or copy.stamp != stamp or at < copy.loaded_at:
            copy = _load(connection, stamp or "", at)
        copy.checked_at, copy.changes_seen = checked_at, changes
        if stamp is not None:
            with _lock:
                _copy = copy
    if chain is None:
        return copy.listings
    listed = copy.by_chain.get(chain)
    if listed is None:
        orgs = set(chain)
        listed = [a for a in copy.listings if a.org_id in orgs]
        copy.by_chain[chain] = listed
    return listed

"""The hub: live and upcoming activities from every org in a member's chain, with the
member's own state; and the public teaser list for visitors.

The activities come from the process's catalog copy (:mod:`gonghui.activities.catalog`);
the member's state for a whole page is one query over their counters and wins.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, literal, select, union_all

from gonghui.accounts.principal import MemberInfo
from gonghui.activities import catalog
from gonghui.activities.catalog import Listing
from gonghui.activities.competition.models import EntryMember
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.lottery.draw import chance_scopes
from gonghui.activities.lottery.models import Draw, DrawOutcome
from gonghui.activities.models import Counter
from gonghui.activities.participation import chain_ids, eligibility_problem
from gonghui.activities.schemas import HubItem, HubPage, TeaserItem, TeaserPage
from gonghui.clock import now
from gonghui.db import DriverUnit, Prepared, in_ids
from gonghui.errors import InvalidInput, NotFound, field_error
from gonghui.orgs.models import Org

MAX_PAGE = 100


@dataclass(frozen=True)
class Cursor:
    """A position in a list ordered by a time, then an id (the hub's start, the published
    results' publication)."""

    at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode(value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            starts, ident = raw.split("|")
            at = datetime.fromisoformat(starts)
            if at.tzinfo is None:
                raise ValueError("a cursor's time is in UTC")
            return Cursor(at, int(ident))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                "request.bad_cursor",
                "the cursor is not valid",
                [field_error("cursor", "request.bad_cursor", "use next_cursor as given")],
            ) from exc


def _page(
    listings: Sequence[Listing], cursor: str | None, limit: int
) -> tuple[list[Listing], str | None]:
    """The page after ``cursor`` of what has not ended yet, earliest start first."""
    limit = min(max(limit, 1), MAX_PAGE)
    at = now()
    after = Cursor.decode(cursor) if cursor else None
    page: list[Listing] = []
    for listing in listings:
        if listing.ends_at <= at:
            continue
        if after is not None and (listing.starts_at, listing.id) <= (after.at, after.id):
            continue
        if len(page) == limit:
            last = page[-1]
            return page, Cursor(last.starts_at, last.id).encode()
        page.append(listing)
    return page, None


# A member's own state in the page's activities, one row per activity and source: whether
# they joined (any counter), free draws used today, earned chances used and granted, and
# prizes won. Fixed SQL (the page's ids are one parameter), probing the counters' and the
# draws' (activity, member) indexes; run on the driver's connection (a hub request's one
# statement, see ``db.Prepared``).
_member_state = Prepared(
    union_all(
        select(
            Counter.activity_id,
            literal(1).label("joined"),
            func.sum(case((Counter.scope == bindparam("free_scope"), Counter.used), else_=0)).label(
                "free_used"
            ),
            func.sum(
                case((Counter.scope == bindparam("earned_scope"), Counter.used), else_=0)
            ).label("earned_used"),
            func.sum(
                case((Counter.scope == bindparam("earned_scope"), Counter.granted), else_=0)
            ).label("earned"),
            literal(0).label("won"),
        )
        .where(
            in_ids(Counter.activity_id, "activity_ids"),
            Counter.membership_id == bindparam("membership_id"),
        )
        .group_by(Counter.activity_id),
        select(Draw.activity_id, literal(0), literal(0), literal(0), literal(0), func.count())
        .where(
            in_ids(Draw.activity_id, "activity_ids"),
            Draw.membership_id == bindparam("membership_id"),
            Draw.outcome == DrawOutcome.WON,
        )
        .group_by(Draw.activity_id),
        # A competition is joined by registering (alone or in a team): no counter is kept.
        select(
            EntryMember.activity_id, literal(1), literal(0), literal(0), literal(0), literal(0)
        ).where(
            in_ids(EntryMember.activity_id, "activity_ids"),
            EntryMember.membership_id == bindparam("membership_id"),
        ),
    )
)


def member_hub(
    connection: Connection, *, member: MemberInfo, cursor: str | None = None, limit: int = 20
) -> HubPage:
    chain = tuple(chain_ids(member.org_path))
    page, next_cursor = _page(catalog.open_activities(connection, chain=chain), cursor, limit)
    # One validation of the whole page (not one model per item and per state).
    return HubPage.model_validate(
        {"items": _items(connection, member, page), "next_cursor": next_cursor}
    )


def member_activity(connection: Connection, *, member: MemberInfo, activity_id: int) -> HubItem:
    """One activity as the member's hub shows it (same visibility, same own state), found by
    id however far down the hub it sits; 404 when the hub would not show it."""
    at = now()
    chain = tuple(chain_ids(member.org_path))
    found = [
        listing
        for listing in catalog.open_activities(connection, chain=chain)
        if listing.id == activity_id and listing.ends_at > at
    ]
    if not found:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return HubItem.model_validate(_items(connection, member, found)[0])


_NOTHING = (0, 0, 0, 0, 0)


def _items(
    connection: Connection, member: MemberInfo, page: Sequence[Listing]
) -> list[dict[str, Any]]:
    """The hub items of ``page`` (as :class:`HubItem` fields) with the member's own state
    (joined, chances left, prizes won), read for all of them in one query."""
    if not page:
        return []
    at = now()
    scopes = chance_scopes()
    # activity id -> [joined, free used today, earned used, earned, won]
    state: dict[int, list[int]] = {}
    rows = _member_state.rows(
        DriverUnit.of(connection),
        {
            "activity_ids": [a.id for a in page],
            "membership_id": member.membership_id,
            "free_scope": scopes.free_today,
            "earned_scope": scopes.earned,
        },
    )
    for row in rows:
        activity_id, *values = row.values()
        mine = state.setdefault(activity_id, [0, 0, 0, 0, 0])
        for k, value in enumerate(values):
            mine[k] += int(value)
    items = []
    for activity in page:
        joined, free_used, earned_used, earned, won = state.get(activity.id, _NOTHING)
        chances: int | None = None
        if activity.free_draws_per_day is not None:
            chances = max(activity.free_draws_per_day - free_used, 0) + max(earned - earned_used, 0)
        items.append(
            {
                **activity.card,
                "status": activity.status_at(at),
                "eligible": eligibility_problem(member=member, eligibility=activity.eligibility)
                is None,
                "me": {"joined": bool(joined), "chances_left": chances, "prizes_won": won},
            }
        )
    return items


def teasers(
    connection: Connection,
    *,
    org_id: int | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> TeaserPage:
    """What a visitor sees before signing in; with ``org_id``, that union's chain only."""
    chain: tuple[int, ...] | None = None
    if org_id is not None:
        path = connection.execute(select(Org.path).where(Org.id == org_id)).scalar()
        chain = tuple(chain_ids(path)) if path is not None else ()
    page, next_cursor = _page(catalog.open_activities(connection, chain=chain), cursor, limit)
    at = now()
    return TeaserPage(
        items=[
            TeaserItem(
                id=a.id,
                org_name=a.org_name,
                kind=a.kind,
                title=a.title,
                status=a.status_at(at),
                starts_at=a.starts_at,
                ends_at=a.ends_at,
            )
            for a in page
        ],
        next_cursor=next_cursor,
    )

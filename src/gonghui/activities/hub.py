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

from sqlalchemy import bindparam, func, literal, select, union_all
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities import catalog
from gonghui.activities.catalog import Listing
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.lottery.draw import chance_scopes
from gonghui.activities.lottery.models import Draw, DrawOutcome
from gonghui.activities.models import Counter
from gonghui.activities.participation import chain_ids, eligibility_problem
from gonghui.activities.schemas import HubItem, HubPage, MemberState, TeaserItem, TeaserPage
from gonghui.clock import now
from gonghui.errors import InvalidInput, NotFound, field_error
from gonghui.orgs.models import Org

MAX_PAGE = 100


@dataclass(frozen=True)
class Cursor:
    starts_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.starts_at.isoformat()}|{self.id}".encode()
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
        if after is not None and (listing.starts_at, listing.id) <= (after.starts_at, after.id):
            continue
        if len(page) == limit:
            last = page[-1]
            return page, Cursor(last.starts_at, last.id).encode()
        page.append(listing)
    return page, None


# A member's counters and wins in the page's activities, in one round trip. Wins come as a
# pseudo-scope that no counter uses.
_WON = "#won"
_member_state = union_all(
    select(Counter.activity_id, Counter.scope, Counter.used, Counter.granted).where(
        Counter.membership_id == bindparam("membership_id"),
        Counter.activity_id.in_(bindparam("counter_ids", expanding=True)),
    ),
    select(Draw.activity_id, literal(_WON), func.count(), literal(0))
    .where(
        Draw.membership_id == bindparam("membership_id"),
        Draw.activity_id.in_(bindparam("draw_ids", expanding=True)),
        Draw.outcome == DrawOutcome.WON,
    )
    .group_by(Draw.activity_id),
)


def member_hub(
    session: Session, *, member: MemberInfo, cursor: str | None = None, limit: int = 20
) -> HubPage:
    chain = tuple(chain_ids(member.org_path))
    page, next_cursor = _page(catalog.open_activities(session, chain=chain), cursor, limit)
    return HubPage(items=_with_member_state(session, member, page), next_cursor=next_cursor)


def member_activity(session: Session, *, member: MemberInfo, activity_id: int) -> HubItem:
    """One activity as the member's hub shows it (same visibility, same own state), found by
    id however far down the hub it sits; 404 when the hub would not show it."""
    at = now()
    chain = tuple(chain_ids(member.org_path))
    found = [
        listing
        for listing in catalog.open_activities(session, chain=chain)
        if listing.id == activity_id and listing.ends_at > at
    ]
    if not found:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return _with_member_state(session, member, found)[0]


def _with_member_state(
    session: Session, member: MemberInfo, page: Sequence[Listing]
) -> list[HubItem]:
    """The hub items of ``page`` with the member's own state (joined, chances, wins), read
    for all of them in one query."""
    ids = [a.id for a in page]
    state: dict[int, dict[str, tuple[int, int]]] = {}
    if ids:
        rows = session.connection().execute(
            _member_state,
            {"membership_id": member.membership_id, "counter_ids": ids, "draw_ids": ids},
        )
        for activity_id, scope, used, granted in rows:
            state.setdefault(activity_id, {})[scope] = (int(used), int(granted))
    free_scope, earned_scope = chance_scopes().free_today, chance_scopes().earned
    at = now()
    items = []
    for activity in page:
        mine = state.get(activity.id, {})
        won = mine.pop(_WON, (0, 0))[0]
        chances: int | None = None
        if activity.free_draws_per_day is not None:
            free_used, _ = mine.get(free_scope, (0, 0))
            earned_used, earned = mine.get(earned_scope, (0, 0))
            chances = max(activity.free_draws_per_day - free_used, 0) + max(earned - earned_used, 0)
        items.append(
            HubItem(
                id=activity.id,
                org_id=activity.org_id,
                org_name=activity.org_name,
                kind=activity.kind,
                title=activity.title,
                status=activity.status_at(at),
                starts_at=activity.starts_at,
                ends_at=activity.ends_at,
                eligible=eligibility_problem(member=member, eligibility=activity.eligibility)
                is None,
                me=MemberState(joined=bool(mine), chances_left=chances, prizes_won=won),
            )
        )
    return items


def teasers(
    session: Session, *, org_id: int | None = None, cursor: str | None = None, limit: int = 20
) -> TeaserPage:
    """What a visitor sees before signing in; with ``org_id``, that union's chain only."""
    chain: tuple[int, ...] | None = None
    if org_id is not None:
        org = session.get(Org, org_id)
        chain = tuple(chain_ids(org.path)) if org is not None else ()
    page, next_cursor = _page(catalog.open_activities(session, chain=chain), cursor, limit)
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

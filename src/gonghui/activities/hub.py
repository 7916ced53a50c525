"""The hub: live and upcoming activities from every org in a member's chain, with the
member's own state; and the public teaser list for visitors."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.lottery.draw import LOTTERY_KINDS, chance_scopes
from gonghui.activities.lottery.models import Draw, DrawOutcome
from gonghui.activities.models import Activity, ActivityStatus, Counter
from gonghui.activities.participation import chain_ids, eligibility_problem
from gonghui.activities.schemas import (
    HubItem,
    HubPage,
    LotteryRules,
    MemberState,
    TeaserItem,
    TeaserPage,
)
from gonghui.activities.service import effective_status
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
            return Cursor(datetime.fromisoformat(starts), int(ident))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                "request.bad_cursor",
                "the cursor is not valid",
                [field_error("cursor", "request.bad_cursor", "use next_cursor as given")],
            ) from exc


def _open_activities(
    org_ids: list[int] | None, cursor: str | None, limit: int
) -> Select[Activity, str]:
    """Published, not over, not paused: live now or upcoming; earliest start first."""
    stmt = (
        select(Activity, Org.name)
        .join(Org, Org.id == Activity.org_id)
        .where(
            Activity.status.in_([ActivityStatus.SCHEDULED, ActivityStatus.LIVE]),
            Activity.ends_at > now(),
            Org.archived_at.is_(None),
        )
    )
    if org_ids is not None:
        stmt = stmt.where(Activity.org_id.in_(org_ids))
    if cursor:
        after = Cursor.decode(cursor)
        stmt = stmt.where(
            or_(
                Activity.starts_at > after.starts_at,
                and_(Activity.starts_at == after.starts_at, Activity.id > after.id),
            )
        )
    return stmt.order_by(Activity.starts_at, Activity.id).limit(min(max(limit, 1), MAX_PAGE) + 1)


def _rows(session: Session, stmt: Select[Activity, str]) -> list[tuple[Activity, str]]:
    return [(row[0], row[1]) for row in session.execute(stmt)]


def _page(
    rows: list[tuple[Activity, str]], limit: int
) -> tuple[list[tuple[Activity, str]], str | None]:
    limit = min(max(limit, 1), MAX_PAGE)
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1][0]
    return rows, Cursor(last.starts_at, last.id).encode()


def member_hub(
    session: Session, *, member: MemberInfo, cursor: str | None = None, limit: int = 20
) -> HubPage:
    rows, next_cursor = _page(
        _rows(session, _open_activities(chain_ids(member.org_path), cursor, limit)),
        limit,
    )
    return HubPage(items=_with_member_state(session, member, rows), next_cursor=next_cursor)


def member_activity(session: Session, *, member: MemberInfo, activity_id: int) -> HubItem:
    """One activity as the member's hub shows it (same visibility, same own state), found by
    id however far down the hub it sits; 404 when the hub would not show it."""
    stmt = _open_activities(chain_ids(member.org_path), None, 1).where(Activity.id == activity_id)
    rows = _rows(session, stmt)
    if not rows:
        raise NotFound(ActivitiesError.NOT_FOUND, f"activity {activity_id} not found")
    return _with_member_state(session, member, rows)[0]


def _with_member_state(
    session: Session, member: MemberInfo, rows: list[tuple[Activity, str]]
) -> list[HubItem]:
    """The hub items of ``rows`` with the member's own state (joined, chances, wins), read
    for all of them in two queries."""
    ids = [a.id for a, _ in rows]
    free_scope = chance_scopes().free_today
    counters: dict[int, dict[str, tuple[int, int]]] = {}
    for c in session.scalars(
        select(Counter).where(
            Counter.membership_id == member.membership_id, Counter.activity_id.in_(ids)
        )
    ):
        counters.setdefault(c.activity_id, {})[c.scope] = (c.used, c.granted)
    wins = {
        row[0]: int(row[1])
        for row in session.execute(
            select(Draw.activity_id, func.count())
            .where(
                Draw.membership_id == member.membership_id,
                Draw.activity_id.in_(ids),
                Draw.outcome == DrawOutcome.WON,
            )
            .group_by(Draw.activity_id)
        )
    }
    items = []
    for activity, org_name in rows:
        mine = counters.get(activity.id, {})
        chances: int | None = None
        if activity.kind in LOTTERY_KINDS:
            rules = LotteryRules.model_validate(activity.config["lottery"])
            free_used, _ = mine.get(free_scope, (0, 0))
            earned_used, earned = mine.get("earned", (0, 0))
            chances = max(rules.free_draws_per_day - free_used, 0) + max(earned - earned_used, 0)
        items.append(
            HubItem(
                id=activity.id,
                org_id=activity.org_id,
                org_name=org_name,
                kind=activity.kind,
                title=activity.title,
                status=effective_status(activity),
                starts_at=activity.starts_at,
                ends_at=activity.ends_at,
                eligible=eligibility_problem(session, member=member, activity=activity) is None,
                me=MemberState(
                    joined=bool(mine),
                    chances_left=chances,
                    prizes_won=int(wins.get(activity.id, 0)),
                ),
            )
        )
    return items


def teasers(
    session: Session, *, org_id: int | None = None, cursor: str | None = None, limit: int = 20
) -> TeaserPage:
    """What a visitor sees before signing in; with ``org_id``, that union's chain only."""
    org_ids = None
    if org_id is not None:
        org = session.get(Org, org_id)
        org_ids = chain_ids(org.path) if org is not None else []
    rows, next_cursor = _page(_rows(session, _open_activities(org_ids, cursor, limit)), limit)
    return TeaserPage(
        items=[
            TeaserItem(
                id=a.id,
                org_name=org_name,
                kind=a.kind,
                title=a.title,
                status=effective_status(a),
                starts_at=a.starts_at,
                ends_at=a.ends_at,
            )
            for a, org_name in rows
        ],
        next_cursor=next_cursor,
    )

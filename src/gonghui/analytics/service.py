"""Org-wide analytics as staff read them: the aggregate rows of an org's subtree added up
when read (members, verification, "one activity a month" coverage, benefits, activities'
participation and budgets), the time they were computed, exports, and asking for a run."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gonghui import ratelimit, tasks
from gonghui.activities.models import Activity
from gonghui.analytics.aggregate import NAME, last_months, month_of
from gonghui.analytics.errors import AnalyticsError
from gonghui.analytics.models import ActivityFigures, AggregateRun, BenefitMonth, OrgMonth
from gonghui.cells import safe_row
from gonghui.clock import now
from gonghui.errors import InvalidInput, PermissionDenied, RateLimited
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, path_ids, require_org, scoped, within

MAX_MONTHS = 36
# Activities listed on the page (the export has them all).
PAGE_ACTIVITIES = 200
# Staff may ask for a run this often each (the job itself is the same for everyone).
REFRESH_WINDOW_S = 60
REFRESHES_PER_WINDOW = 1
# Runs asked for by all staff together in a window.
REFRESHES_IN_ALL = 10


def coverage(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` as a fraction (None when there is no whole)."""
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class MonthFigures:
    month: str
    roster_members: int
    verified_members: int
    active_members: int
    participations: int

    @property
    def coverage(self) -> float | None:
        """The share of verified members who took part in at least one activity."""
        return coverage(self.active_members, self.verified_members)


@dataclass(frozen=True)
class BenefitFigures:
    month: str
    kind: str
    issued_count: int
    issued_amount: int
    used_count: int
    used_amount: int


@dataclass(frozen=True)
class OrgFigures:
    """A direct child's subtree (or the org's own members, ``own``): this month's members
    and the period's benefits."""

    org_id: int
    name: str
    own: bool
    roster_members: int
    verified_members: int
    active_members: int
    issued_count: int
    used_count: int

    @property
    def coverage(self) -> float | None:
        return coverage(self.active_members, self.verified_members)


@dataclass(frozen=True)
class ActivityRow:
    activity_id: int
    title: str
    kind: str
    org_name: str
    month: str
    participants: int
    participations: int
    eligible_members: int
    budget_cents: int | None
    spent_cents: int
    budget_points: int | None
    spent_points: int

    @property
    def rate(self) -> float | None:
        """Participants as a share of the verified members of the organiser's subtree."""
        return coverage(self.participants, self.eligible_members)


@dataclass(frozen=True)
class Overview:
    org_id: int
    org_name: str
    months: list[str]
    computed_at: datetime | None
    monthly: list[MonthFigures]
    benefits: list[BenefitFigures]
    orgs: list[OrgFigures]
    activities: list[ActivityRow]
    activity_count: int
    budget_cents: int
    spent_cents: int
    budget_points: int
    spent_points: int

    @property
    def current(self) -> MonthFigures:
        return self.monthly[-1]


def computed_at(session: Session) -> datetime | None:
    run = session.get(AggregateRun, NAME)
    return run.computed_at if run is not None else None


def _monthly(session: Session, org: Org, months: list[str]) -> list[MonthFigures]:
    rows = {
        month: MonthFigures(month, int(r), int(v), int(a), int(p))
        for month, r, v, a, p in session.execute(
            select(
                OrgMonth.month,
                func.sum(OrgMonth.roster_members),
                func.sum(OrgMonth.verified_members),
                func.sum(OrgMonth.active_members),
                func.sum(OrgMonth.participations),
            )
            .join(Org, Org.id == OrgMonth.org_id)
            .where(within(Org.path, org.path), OrgMonth.month.in_(months))
            .group_by(OrgMonth.month)
        )
    }
    return [rows.get(m) or MonthFigures(m, 0, 0, 0, 0) for m in months]


def _benefits(session: Session, org: Org, months: list[str]) -> list[BenefitFigures]:
    return [
        BenefitFigures(month, kind, int(ic), int(ia), int(uc), int(ua))
        for month, kind, ic, ia, uc, ua in session.execute(
            select(
                BenefitMonth.month,
                BenefitMonth.kind,
                func.sum(BenefitMonth.issued_count),
                func.sum(BenefitMonth.issued_amount),
                func.sum(BenefitMonth.used_count),
                func.sum(BenefitMonth.used_amount),
            )
            .join(Org, Org.id == BenefitMonth.org_id)
            .where(within(Org.path, org.path), BenefitMonth.month.in_(months))
            .group_by(BenefitMonth.month, BenefitMonth.kind)
            .order_by(BenefitMonth.month, BenefitMonth.kind)
        )
    ]


def _orgs(session: Session, org: Org, months: list[str]) -> list[OrgFigures]:
    """The org's own members, then each direct child's subtree."""
    depth = len(path_ids(org.path))
    children = session.execute(
        select(Org.id, Org.name).where(Org.parent_id == org.id).order_by(Org.id)
    ).all()
    names = {org.id: org.name, **dict(children)}
    sums: dict[int, list[int]] = {i: [0, 0, 0, 0, 0] for i in names}

    def part_of(path: str) -> int:
        ids = path_ids(path)
        return ids[depth] if len(ids) > depth else org.id

    for path, r, v, a in session.execute(
        select(
            Org.path, OrgMonth.roster_members, OrgMonth.verified_members, OrgMonth.active_members
        )
        .join(Org, Org.id == OrgMonth.org_id)
        .where(within(Org.path, org.path), OrgMonth.month == months[-1])
    ):
        figures = sums.setdefault(part_of(path), [0, 0, 0, 0, 0])
        figures[0] += r
        figures[1] += v
        figures[2] += a
    for path, issued, used in session.execute(
        select(Org.path, func.sum(BenefitMonth.issued_count), func.sum(BenefitMonth.used_count))
        .join(Org, Org.id == BenefitMonth.org_id)
        .where(within(Org.path, org.path), BenefitMonth.month.in_(months))
        .group_by(Org.path)
    ):
        figures = sums.setdefault(part_of(path), [0, 0, 0, 0, 0])
        figures[3] += int(issued)
        figures[4] += int(used)
    return [
        OrgFigures(i, names.get(i, str(i)), i == org.id, *sums[i])
        for i in [org.id, *(c for c, _ in children)]
    ]


def _activities(
    session: Session, org: Org, months: list[str], *, limit: int | None
) -> tuple[list[ActivityRow], tuple[int, int, int, int, int]]:
    in_period = (within(Org.path, org.path), ActivityFigures.month.in_(months))
    count, budget_cents, spent_cents, budget_points, spent_points = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(ActivityFigures.budget_cents), 0),
            func.coalesce(func.sum(ActivityFigures.spent_cents), 0),
            func.coalesce(func.sum(ActivityFigures.budget_points), 0),
            func.coalesce(func.sum(ActivityFigures.spent_points), 0),
        )
        .join(Org, Org.id == ActivityFigures.org_id)
        .where(*in_period)
    ).one()
    stmt = (
        select(ActivityFigures, Activity.title, Activity.kind, Org.name)
        .join(Activity, Activity.id == ActivityFigures.activity_id)
        .join(Org, Org.id == ActivityFigures.org_id)
        .where(*in_period)
        .order_by(ActivityFigures.month.desc(), ActivityFigures.activity_id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = [
        ActivityRow(
            f.activity_id,
            title,
            str(kind),
            org_name,
            f.month,
            f.participants,
            f.participations,
            f.eligible_members,
            f.budget_cents,
            f.spent_cents,
            f.budget_points,
            f.spent_points,
        )
        for f, title, kind, org_name in session.execute(stmt)
    ]
    totals = (
        int(count or 0),
        int(budget_cents or 0),
        int(spent_cents or 0),
        int(budget_points or 0),
        int(spent_points or 0),
    )
    return rows, totals


def period(months: int) -> list[str]:
    if not 1 <= months <= MAX_MONTHS:
        raise InvalidInput(
            AnalyticsError.BAD_PERIOD,
            f"months must be between 1 and {MAX_MONTHS}",
            [{"field": "months", "code": AnalyticsError.BAD_PERIOD, "message": "out of range"}],
        )
    return last_months(months, until=month_of(now()))


def overview(
    session: Session,
    *,
    actor: Actor,
    org_id: int,
    months: int = 12,
    activity_limit: int | None = PAGE_ACTIVITIES,
) -> Overview:
    """The figures of ``org_id``'s subtree over the last ``months`` months (this one
    included), from the aggregates; not found unless the caller reads analytics there."""
    org = require_org(session, actor, Permission.ANALYTICS_READ, org_id)
    labels = period(months)
    activities, (count, budget_cents, spent_cents, budget_points, spent_points) = _activities(
        session, org, labels, limit=activity_limit
    )
    return Overview(
        org_id=org.id,
        org_name=org.name,
        months=labels,
        computed_at=computed_at(session),
        monthly=_monthly(session, org, labels),
        benefits=_benefits(session, org, labels),
        orgs=_orgs(session, org, labels),
        activities=activities,
        activity_count=count,
        budget_cents=budget_cents,
        spent_cents=spent_cents,
        budget_points=budget_points,
        spent_points=spent_points,
    )


def readable_orgs(session: Session, *, actor: Actor) -> list[Org]:
    """The orgs whose analytics the caller reads, tree order."""
    stmt = scoped(select(Org), actor, Permission.ANALYTICS_READ).where(Org.archived_at.is_(None))
    return list(session.scalars(stmt.order_by(Org.path)))


# -- exports -----------------------------------------------------------------------------

SETS = ("monthly", "benefits", "orgs", "activities")


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def table(overview: Overview, figure_set: str) -> tuple[list[str], list[list[Any]]]:
    """One figure set as a header and rows (what the export writes)."""
    if figure_set == "monthly":
        return (
            ["month", "roster_members", "verified_members", "active_members", "coverage_pct"],
            [
                [m.month, m.roster_members, m.verified_members, m.active_members, _pct(m.coverage)]
                for m in overview.monthly
            ],
        )
    if figure_set == "benefits":
        return (
            ["month", "kind", "issued_count", "issued_amount", "used_count", "used_amount"],
            [
                [b.month, b.kind, b.issued_count, b.issued_amount, b.used_count, b.used_amount]
                for b in overview.benefits
            ],
        )
    if figure_set == "orgs":
        return (
            [
                "org_id",
                "org",
                "roster_members",
                "verified_members",
                "active_members",
                "coverage_pct",
                "benefits_issued",
                "benefits_used",
            ],
            [
                [
                    o.org_id,
                    o.name,
                    o.roster_members,
                    o.verified_members,
                    o.active_members,
                    _pct(o.coverage),
                    o.issued_count,
                    o.used_count,
                ]
                for o in overview.orgs
            ],
        )
    if figure_set == "activities":
        return (
            [
                "activity_id",
                "title",
                "kind",
                "org",
                "month",
                "participants",
                "participations",
                "eligible_members",
                "participation_pct",
                "budget_cents",
                "spent_cents",
                "budget_points",
                "spent_points",
            ],
            [
                [
                    a.activity_id,
                    a.title,
                    a.kind,
                    a.org_name,
                    a.month,
                    a.participants,
                    a.participations,
                    a.eligible_members,
                    _pct(a.rate),
                    a.budget_cents,
                    a.spent_cents,
                    a.budget_points,
                    a.spent_points,
                ]
                for a in overview.activities
            ],
        )
    raise InvalidInput(AnalyticsError.BAD_SET, f"no figure set {figure_set!r}")


def to_xlsx(overview: Overview, figure_set: str) -> bytes:
    header, rows = table(overview, figure_set)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(figure_set)
    sheet.append(["org", overview.org_name, "computed_at", _stamp(overview.computed_at)])
    sheet.append(header)
    for row in rows:
        sheet.append(safe_row(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _stamp(at: datetime | None) -> str:
    return at.isoformat() if at is not None else ""


# -- asking for a run --------------------------------------------------------------------


def request_refresh(session: Session, *, actor: Actor, full: bool = False) -> int:
    """Queue a run of the aggregation job for staff who read analytics (a full one for
    platform admins only), at most once a minute each; returns the task's id."""
    if not actor.can_somewhere(Permission.ANALYTICS_READ):
        raise PermissionDenied(AnalyticsError.FORBIDDEN, "you do not read analytics")
    if full and not actor.is_platform_admin:
        raise PermissionDenied(AnalyticsError.FULL_ADMIN_ONLY, "a full run is for platform admins")
    for key, limit in (
        (f"analytics-refresh:user:{actor.user_id}", REFRESHES_PER_WINDOW),
        ("analytics-refresh:all", REFRESHES_IN_ALL),
    ):
        decision = ratelimit.hit(key, limit=limit, window_s=REFRESH_WINDOW_S)
        if not decision.allowed:
            raise RateLimited(
                AnalyticsError.REFRESH_THROTTLED,
                "the figures were refreshed a moment ago; try again shortly",
                retry_after_s=decision.retry_after_s,
            )
    return tasks.defer(session, "analytics.refresh", full=full)

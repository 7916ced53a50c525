"""The aggregation job: reads the roster, the memberships, the acts of taking part and the
benefits ledger, and rewrites the aggregate rows (:mod:`gonghui.analytics.models`).

Nothing on a member's path writes for analytics: the figures are recomputed from the rows
those paths write anyway. A run is incremental by default: the months from the one the
previous run's day before fell in to the current one (so a month's last day is settled
after it closes), and the activities not ended before those months; a full run recomputes
everything (once a day, and on demand), which also re-files the past of members who moved
to another org. Computing happens in a read transaction and the result is written in a
short one of its own, so SQLite's one writer is held only while rows are replaced.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, delete, distinct, func, insert, or_, select
from sqlalchemy.orm import Session

from gonghui.activities.models import Activity, ActivityStatus
from gonghui.activities.participation import EligibilityRules
from gonghui.analytics.models import ActivityFigures, AggregateRun, BenefitMonth, OrgMonth
from gonghui.analytics.participation import acts
from gonghui.benefits.models import Budget, LedgerAction, LedgerEntry, LedgerKind
from gonghui.clock import day_start, display_zone, local_day, now
from gonghui.db import unit_of_work, upsert_insert
from gonghui.members.models import Membership, MembershipStatus, RosterEntry
from gonghui.orgs.models import Org
from gonghui.tenancy import path_ids, path_within

NAME = "aggregates"
# A full run goes back at most this many months.
MAX_MONTHS = 120
# The ledger's kinds that are benefits (a member's own payment is not).
BENEFIT_KINDS = (LedgerKind.VOUCHER, LedgerKind.POINTS, LedgerKind.PRIZE, LedgerKind.SUBSIDY)
MONTH_LABEL = "month_label"
CHUNK = 5000


def month_of(instant: datetime) -> str:
    """The calendar month of ``instant`` in the display zone, "2026-12"."""
    local = instant.astimezone(display_zone())
    return f"{local.year:04d}-{local.month:02d}"


def next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def month_start(month: str) -> datetime:
    """The instant ``month`` begins in the display zone."""
    return day_start(date(int(month[:4]), int(month[5:7]), 1))


def month_range(first: str, last: str) -> list[str]:
    months = [first]
    while months[-1] < last:
        months.append(next_month(months[-1]))
    return months


def last_months(count: int, *, until: str) -> list[str]:
    """The ``count`` months ending with ``until``, oldest first."""
    months = [until]
    for _ in range(count - 1):
        year, number = int(months[0][:4]), int(months[0][5:7])
        months.insert(0, f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}")
    return months


def bucket(column: Any, months: list[str]) -> ColumnElement[str]:
    """The month among ``months`` (consecutive) whose end is the first after ``column``'s
    instant: the month it falls in, or the first month for anything before it (what a
    running total as at each month's end wants)."""
    return case(*[(column < month_start(next_month(m)), m) for m in months]).label(MONTH_LABEL)


@dataclass
class Figures:
    """One run's result, computed before anything is written."""

    full: bool
    months: list[str]
    org_months: list[dict[str, Any]] = field(default_factory=list)
    benefits: list[dict[str, Any]] = field(default_factory=list)
    activity_ids: list[int] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)


def _first_month(session: Session, *, full: bool, run: AggregateRun | None, at: datetime) -> str:
    current = month_of(at)
    floor = last_months(MAX_MONTHS, until=current)[0]
    if not full and run is not None:
        return max(month_of(min(run.computed_at, at) - timedelta(days=1)), floor)
    earliest = [
        session.scalar(select(func.min(RosterEntry.created_at))),
        session.scalar(select(func.min(LedgerEntry.at))),
        session.scalar(
            select(func.min(Activity.starts_at)).where(Activity.status != ActivityStatus.DRAFT)
        ),
    ]
    known = [month_of(e) for e in earliest if e is not None]
    return max(min([*known, current]), floor)


def _running_totals(
    session: Session, org_column: Any, at_column: Any, months: list[str], *where: Any
) -> dict[tuple[int, str], int]:
    """Rows per org as at each month's end (or ``at``'s, for the month under way)."""
    end = month_start(next_month(months[-1]))
    added: dict[int, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(org_column, bucket(at_column, months), func.count())
        .where(at_column < end, *where)
        .group_by(org_column, MONTH_LABEL)
    )
    for org_id, month, count in rows:
        added[org_id][month] = int(count)
    totals: dict[tuple[int, str], int] = {}
    for org_id, per_month in added.items():
        running = 0
        for month in months:
            running += per_month.get(month, 0)
            totals[(org_id, month)] = running
    return totals


def _org_months(session: Session, months: list[str], activity_ids: Select[Any] | None) -> Any:
    start, end = month_start(months[0]), month_start(next_month(months[-1]))
    roster = _running_totals(session, RosterEntry.org_id, RosterEntry.created_at, months)
    verified = _running_totals(
        session,
        Membership.org_id,
        Membership.verified_at,
        months,
        Membership.status == MembershipStatus.VERIFIED,
    )
    taking_part = acts(activity_ids)
    active = {
        (org_id, month): (int(members), int(times))
        for org_id, month, members, times in session.execute(
            select(
                Membership.org_id,
                bucket(taking_part.c.at, months),
                func.count(distinct(taking_part.c.membership_id)),
                func.count(),
            )
            .join(Membership, Membership.id == taking_part.c.membership_id)
            .where(
                taking_part.c.at >= start,
                taking_part.c.at < end,
                Membership.status == MembershipStatus.VERIFIED,
            )
            .group_by(Membership.org_id, MONTH_LABEL)
        )
    }
    rows = []
    for org_id, month in sorted(set(roster) | set(verified) | set(active)):
        members, times = active.get((org_id, month), (0, 0))
        figures = (roster.get((org_id, month), 0), verified.get((org_id, month), 0), members)
        if not any(figures) and not times:
            continue
        rows.append(
            {
                "org_id": org_id,
                "month": month,
                "roster_members": figures[0],
                "verified_members": figures[1],
                "active_members": members,
                "participations": times,
            }
        )
    return rows


def _benefits(session: Session, months: list[str]) -> list[dict[str, Any]]:
    start, end = month_start(months[0]), month_start(next_month(months[-1]))
    rows: dict[tuple[int, str, str], dict[str, Any]] = {}
    result = session.execute(
        select(
            Membership.org_id,
            bucket(LedgerEntry.at, months),
            LedgerEntry.kind,
            LedgerEntry.action,
            func.count(),
            func.coalesce(func.sum(func.abs(LedgerEntry.amount)), 0),
        )
        .join(Membership, Membership.id == LedgerEntry.membership_id)
        .where(
            LedgerEntry.at >= start,
            LedgerEntry.at < end,
            LedgerEntry.kind.in_(BENEFIT_KINDS),
            LedgerEntry.action.in_((LedgerAction.ISSUE, LedgerAction.REDEEM)),
        )
        .group_by(Membership.org_id, MONTH_LABEL, LedgerEntry.kind, LedgerEntry.action)
    )
    for org_id, month, kind, action, count, amount in result:
        row = rows.setdefault(
            (org_id, month, str(kind)),
            {
                "org_id": org_id,
                "month": month,
                "kind": str(kind),
                "issued_count": 0,
                "issued_amount": 0,
                "used_count": 0,
                "used_amount": 0,
            },
        )
        side = "issued" if action == LedgerAction.ISSUE else "used"
        row[f"{side}_count"] += int(count)
        row[f"{side}_amount"] += int(amount)
    return list(rows.values())


class Eligible:
    """Verified members of an org's subtree whom an activity's rules admit, now. The
    members are read once per run, and only if an activity has rules: a count walks the
    subtree's members (most activities have none and take :func:`verified_by_subtree`)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._by_org: dict[int, list[tuple[tuple[str, ...], date]]] | None = None
        self._paths: dict[int, str] = {}

    def _load(self) -> dict[int, list[tuple[tuple[str, ...], date]]]:
        if self._by_org is None:
            self._by_org = defaultdict(list)
            for org_id, tags, join_date, verified_at in self._session.execute(
                select(
                    Membership.org_id,
                    Membership.tags,
                    RosterEntry.join_date,
                    Membership.verified_at,
                )
                .join(RosterEntry, RosterEntry.id == Membership.roster_entry_id)
                .where(Membership.status == MembershipStatus.VERIFIED)
            ):
                since = join_date or local_day(verified_at)
                self._by_org[org_id].append((tuple(str(t) for t in tags or ()), since))
            self._paths = dict(self._session.execute(select(Org.id, Org.path)).all())
        return self._by_org

    def count(self, org_id: int, rules: EligibilityRules) -> int:
        by_org = self._load()
        root = self._paths.get(org_id)
        if root is None:
            return 0
        today = local_day()
        return sum(
            1
            for member_org, path in self._paths.items()
            if path_within(path, root)
            for tags, since in by_org.get(member_org, ())
            if rules.problem(tags=tags, member_since=since, today=today) is None
        )


def verified_by_subtree(session: Session) -> dict[int, int]:
    """Verified members of each org's whole subtree, now."""
    own = dict(
        session.execute(
            select(Membership.org_id, func.count())
            .where(Membership.status == MembershipStatus.VERIFIED)
            .group_by(Membership.org_id)
        ).all()
    )
    totals: dict[int, int] = defaultdict(int)
    for org_id, path in session.execute(select(Org.id, Org.path)):
        count = int(own.get(org_id, 0))
        if count:
            for ancestor in path_ids(path):
                totals[ancestor] += count
    return totals


def _activities(
    session: Session, *, full: bool, months: list[str]
) -> tuple[list[int], list[dict[str, Any]]]:
    chosen = select(Activity.id).where(Activity.status != ActivityStatus.DRAFT)
    if not full:
        chosen = chosen.where(
            or_(
                Activity.ends_at >= month_start(months[0]),
                Activity.id.not_in(select(ActivityFigures.activity_id)),
            )
        )
    activities = session.execute(
        select(
            Activity.id,
            Activity.org_id,
            Activity.eligibility,
            Activity.starts_at,
            Budget.cents_total,
            Budget.cents_spent,
            Budget.points_total,
            Budget.points_spent,
        )
        .outerjoin(Budget, Budget.activity_id == Activity.id)
        .where(Activity.id.in_(chosen))
    ).all()
    if not activities:
        return [], []
    taking_part = acts(chosen)
    counts = {
        activity_id: (int(members), int(times))
        for activity_id, members, times in session.execute(
            select(
                taking_part.c.activity_id,
                func.count(distinct(taking_part.c.membership_id)),
                func.count(),
            ).group_by(taking_part.c.activity_id)
        )
    }
    verified = verified_by_subtree(session)
    eligible = Eligible(session)
    rows = []
    for (
        activity_id,
        org_id,
        eligibility,
        starts_at,
        cents,
        cents_spent,
        points,
        points_spent,
    ) in activities:
        members, times = counts.get(activity_id, (0, 0))
        rules = EligibilityRules.of(eligibility)
        rows.append(
            {
                "activity_id": activity_id,
                "org_id": org_id,
                "month": month_of(starts_at),
                "participants": members,
                "participations": times,
                "eligible_members": verified.get(org_id, 0)
                if rules.open_to_all
                else eligible.count(org_id, rules),
                "budget_cents": cents,
                "spent_cents": cents_spent or 0,
                "budget_points": points,
                "spent_points": points_spent or 0,
            }
        )
    return [int(activity_id) for activity_id, *_ in activities], rows


def compute(session: Session, *, full: bool = False, at: datetime | None = None) -> Figures:
    """Everything one run writes, read in ``session`` (a read transaction)."""
    at = at or now()
    run = session.get(AggregateRun, NAME)
    full = full or run is None
    months = month_range(_first_month(session, full=full, run=run, at=at), month_of(at))
    # Outside a full run, only the activities not ended before these months (a day's
    # margin: a payment notified after a sale closed) can have acts in them, and the
    # activity's own index finds their rows. Activities not started yet stay in: a
    # competition takes entries before it opens.
    open_then = (
        None
        if full
        else select(Activity.id).where(
            Activity.status != ActivityStatus.DRAFT,
            Activity.ends_at >= month_start(months[0]) - timedelta(days=1),
        )
    )
    figures = Figures(full=full, months=months)
    figures.org_months = _org_months(session, months, open_then)
    figures.benefits = _benefits(session, months)
    figures.activity_ids, figures.activities = _activities(session, full=full, months=months)
    return figures


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(model), rows[start : start + CHUNK])


def _lock_run(session: Session, at: datetime) -> AggregateRun:
    """The job's state row, locked to this transaction (made on the first run): two runs
    that finish together replace the rows one after the other, never interleaved."""
    session.execute(
        upsert_insert(session.get_bind().dialect.name)(AggregateRun)
        .values(name=NAME, computed_at=at, months="")
        .on_conflict_do_nothing(index_elements=["name"])
    )
    run = session.scalar(
        select(AggregateRun)
        .where(AggregateRun.name == NAME)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert run is not None
    return run


def store(session: Session, figures: Figures, *, at: datetime | None = None) -> AggregateRun:
    """Replace the rows ``figures`` recomputed (in ``session``'s write transaction),
    unless a run computed later has stored its own already."""
    at = at or now()
    run = _lock_run(session, at)
    if run.months and run.computed_at > at:
        return run
    if figures.full:
        for model in (OrgMonth, BenefitMonth, ActivityFigures):
            session.execute(delete(model))
    else:
        session.execute(delete(OrgMonth).where(OrgMonth.month.in_(figures.months)))
        session.execute(delete(BenefitMonth).where(BenefitMonth.month.in_(figures.months)))
        for start in range(0, len(figures.activity_ids), CHUNK):
            chunk = figures.activity_ids[start : start + CHUNK]
            session.execute(delete(ActivityFigures).where(ActivityFigures.activity_id.in_(chunk)))
    _insert(session, OrgMonth, figures.org_months)
    _insert(session, BenefitMonth, figures.benefits)
    _insert(session, ActivityFigures, figures.activities)
    run.computed_at = at
    if figures.full:
        run.full_at = at
    run.months = f"{figures.months[0]}..{figures.months[-1]}"
    session.flush()
    return run


def recompute(*, full: bool = False, at: datetime | None = None) -> Figures:
    """One run: compute in a read transaction, then write in a short one."""
    at = at or now()
    with unit_of_work(read_only=True) as session:
        figures = compute(session, full=full, at=at)
    with unit_of_work() as session:
        store(session, figures, at=at)
    return figures

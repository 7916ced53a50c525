"""Dry run: play a lottery's prize table against simulated members before publishing it.

The operator states how many members are expected, the share of them who draw on a day and
how many times each draws; the simulation plays every draw of every day of the activity's
window with the rules the real draw applies (:mod:`gonghui.activities.lottery.draw`): a
prize picked by weight, won while it has stock, the budget covers it and the member is under
the win cap; the activity's daily and total limits bound each member's draws. Its answer
is what operators decide on: how the prizes fall, how much budget goes, and on which day
each prize and the budget run out.

It is a Monte Carlo run, one pass, seeded (the same seed gives the same answer), of at most
:data:`DRAWS_MAX` draws so that it fits in a request: a scenario beyond that is refused with
the figures, and the operator simulates a share of the members (the distribution and the
per-member figures carry over; stock and budget do not scale, so halve them too). Nothing
is written: the activity may be a draft or live; a live one's stock is taken as configured,
not as it stands.
"""

from __future__ import annotations

import collections
import itertools
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from gonghui import clock, ratelimit
from gonghui.activities.lottery.models import DrawOutcome, PrizeKind
from gonghui.activities.models import Activity
from gonghui.activities.schemas import LotteryRules
from gonghui.activities.service import get_activity, lottery_rules
from gonghui.errors import InvalidInput, RateLimited, field_error
from gonghui.tenancy import Actor

DRAWS_MAX = 1_000_000
DAYS_MAX = 366


TOO_LARGE = "lottery.dry_run_too_large"
NOT_A_LOTTERY = "lottery.dry_run_not_a_lottery"
THROTTLED = "lottery.dry_run_throttled"
# Each run is up to about a second of one process's CPU: a few a minute per operator.
RUNS_PER_MINUTE = 6


@dataclass(frozen=True)
class Scenario:
    members: int
    participation: float  # share of the members who draw on a day, 0 < p <= 1
    # By each member who draws that day, before the activity's limits; None: the free
    # draws a day (at least one).
    draws_per_day: int | None = None
    seed: int = 0


@dataclass
class PrizeResult:
    position: int
    name: str
    kind: PrizeKind
    stock: int
    picked: int = 0
    won: int = 0
    out_of_stock_on: date | None = None


@dataclass
class DayResult:
    day: date
    draws: int = 0
    won: int = 0
    cents: int = 0
    points: int = 0


@dataclass
class DryRun:
    scenario: Scenario
    days: list[DayResult]
    prizes: list[PrizeResult]
    outcomes: dict[DrawOutcome, int]
    cents_budget: int | None
    points_budget: int | None
    cents_used: int = 0
    points_used: int = 0
    budget_out_on: date | None = None
    winners: int = 0
    drawing_members: int = 0

    @property
    def draws(self) -> int:
        return sum(self.outcomes.values())


def dry_run(session: Session, *, actor: Actor, activity_id: int, scenario: Scenario) -> DryRun:
    """Simulate ``scenario`` on a lottery the operator manages (draft, live or ended)."""
    runs = ratelimit.hit(
        f"lottery-dry-run:user:{actor.user_id}", limit=RUNS_PER_MINUTE, window_s=60
    )
    if not runs.allowed:
        raise RateLimited(
            THROTTLED, "too many dry runs; try again shortly", retry_after_s=runs.retry_after_s
        )
    activity = get_activity(session, actor=actor, activity_id=activity_id)
    rules = lottery_rules(activity)
    if rules is None:
        raise InvalidInput(NOT_A_LOTTERY, f"a {activity.kind} activity has no prize table to play")
    return simulate(activity, rules, scenario)


def window_days(starts_at: datetime, ends_at: datetime) -> list[date]:
    """The local days an activity open from ``starts_at`` to ``ends_at`` touches."""
    first, last = clock.local_day(starts_at), clock.local_day(ends_at - timedelta(microseconds=1))
    count = min((last - first).days + 1, DAYS_MAX)
    return [first + timedelta(days=i) for i in range(max(count, 1))]


def check_size(scenario: Scenario, *, daily_draws: int, days: int) -> None:
    """Refuse a scenario with more draws than one run plays, naming the figures."""
    drawing = round(scenario.members * scenario.participation)
    planned = drawing * daily_draws * days
    if planned > DRAWS_MAX:
        raise InvalidInput(
            TOO_LARGE,
            f"{planned} draws to simulate; at most {DRAWS_MAX} in one run: simulate fewer "
            "members (and proportionally less stock and budget) or a lower participation",
            [field_error("members", TOO_LARGE, f"at most {DRAWS_MAX} draws")],
        )


def simulate(activity: Activity, rules: LotteryRules, scenario: Scenario) -> DryRun:
    """Play ``scenario`` against ``activity``'s prize table, limits and budget."""
    days = window_days(activity.starts_at, activity.ends_at)
    daily_draws = scenario.draws_per_day or max(rules.free_draws_per_day, 1)
    if activity.limit_per_day is not None:
        daily_draws = min(daily_draws, activity.limit_per_day)
    check_size(scenario, daily_draws=daily_draws, days=len(days))
    rng = random.Random(scenario.seed)
    prizes = [
        PrizeResult(position=i, name=p.name, kind=p.kind, stock=p.stock)
        for i, p in enumerate(rules.prizes)
    ]
    cumulative = list(itertools.accumulate(p.weight for p in rules.prizes))
    stock = [p.stock for p in rules.prizes]
    run = DryRun(
        scenario=scenario,
        days=[DayResult(day) for day in days],
        prizes=prizes,
        outcomes=dict.fromkeys(DrawOutcome, 0),
        cents_budget=activity.budget_cents,
        points_budget=activity.budget_points,
    )
    cents_left = activity.budget_cents
    points_left = activity.budget_points
    drawn: dict[int, int] = {}  # member -> draws over the whole run
    wins: dict[int, int] = {}  # member -> prizes won
    drawing_today = round(scenario.members * scenario.participation)
    cap = rules.max_wins_per_member
    limit_total = activity.limit_total
    positions = range(len(prizes))
    # Only a pick of a prize can change anything; a no-prize pick is just counted.
    costs = [
        (
            p.kind is not PrizeKind.NONE,
            p.value if p.kind is PrizeKind.VOUCHER else 0,
            p.value if p.kind is PrizeKind.POINTS else 0,
        )
        for p in rules.prizes
    ]
    for today in run.days:
        members: list[int] = []  # the day's draws in order, by member
        for member in rng.sample(range(scenario.members), drawing_today):
            turns = daily_draws
            if limit_total is not None:
                turns = min(turns, limit_total - drawn.get(member, 0))
            if turns > 0:
                drawn[member] = drawn.get(member, 0) + turns
                members.extend(itertools.repeat(member, turns))
        # As fairness.pick: each draw the prize its roll falls on, by cumulative weight.
        picks = rng.choices(positions, cum_weights=cumulative, k=len(members))
        today.draws = len(picks)
        for i, count in collections.Counter(picks).items():
            prizes[i].picked += count
        for member, i in zip(members, picks, strict=True):
            is_prize, cents, points = costs[i]
            if not is_prize:
                run.outcomes[DrawOutcome.NO_PRIZE] += 1
                continue
            if cap is not None and wins.get(member, 0) >= cap:
                run.outcomes[DrawOutcome.WIN_CAP] += 1
                continue
            if stock[i] < 1:
                run.outcomes[DrawOutcome.OUT_OF_STOCK] += 1
                continue
            if (cents_left is not None and cents > cents_left) or (
                points_left is not None and points > points_left
            ):
                run.outcomes[DrawOutcome.BUDGET] += 1
                run.budget_out_on = run.budget_out_on or today.day
                continue
            run.outcomes[DrawOutcome.WON] += 1
            stock[i] -= 1
            if stock[i] == 0:
                prizes[i].out_of_stock_on = today.day
            if cents_left is not None:
                cents_left -= cents
            if points_left is not None:
                points_left -= points
            prizes[i].won += 1
            today.won += 1
            today.cents += cents
            today.points += points
            wins[member] = wins.get(member, 0) + 1
    run.cents_used = sum(d.cents for d in run.days)
    run.points_used = sum(d.points for d in run.days)
    run.winners = len(wins)
    run.drawing_members = len(drawn)
    return run

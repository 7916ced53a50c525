"""Draws: claim a chance, roll, take stock, issue, log, answer; many members at a time.

The hot writer hands every draw waiting for it to :func:`draw_many`, which does each step
for the whole batch with one statement (claiming chances and limits, numbering the draws,
taking stock and budget, issuing vouchers, points and prizes, logging the draws and their
ledger rows). Every draw gets the outcome it would have got drawn alone, one after
another in batch order: a member's second draw in a batch comes after everyone's first,
stock and budget go to winners in order, and a draw that is refused (no chance left, a
limit reached, the activity closed) leaves nothing written. Everything is committed before
any answer leaves, so a member never sees a win the ledger does not hold, even across
``kill -9``.

A prize's stock and its activity's budget are the rows every winning draw takes from,
whichever host it reaches. On PostgreSQL, where several writers run batches at once, a row
locked stays locked until its batch commits, so where a batch takes them decides how long
the others wait for it. A writer's first try of a batch therefore reads stock and budget
without locking them, works the outcomes out from those figures, writes everything else,
and takes stock and budget only at the end, by conditional updates (``stock >= k``,
``spent + k <= total``) in prize then activity order: the rows are held from there to the
commit only. If another writer took what this batch counted on, a condition fails and the
writer runs the batch again (``hotwrite.RunAgain``), this time locking stock and budget
(``SELECT ... FOR UPDATE``) before it works the outcomes out, as every run does on SQLite
(one writer) and outside the writer. Either way nothing is oversold and every draw gets
the outcome it would have got in batch order. Members' own rows (chances, limits, wins,
draw numbers, idempotency keys) are claimed in member order by one statement each (see
:mod:`gonghui.activities.counters`).

Stock and budget are not sharded (N rows per prize, taken from a random one, summed to
read): with the take held back to the end, sampling ``pg_stat_activity`` through two-host
bursts of ``bench/draw_scaleout.py`` found no backend waiting for a lock, so one row per
prize and budget does not limit two hosts there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from prometheus_client import Counter as MetricCounter
from sqlalchemy import Select, Update, bindparam, insert, select, update
from sqlalchemy.orm import Session

from gonghui import hooks, hotwrite, idempotency
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.lottery import fairness
from gonghui.activities.lottery.errors import LotteryError
from gonghui.activities.lottery.models import Draw, DrawOutcome, PoolPrize, PrizeKind
from gonghui.activities.models import Activity, ActivityKind
from gonghui.activities.participation import claim_participations, live_round
from gonghui.activities.schemas import LotteryRules
from gonghui.activities.service import lottery_rules
from gonghui.benefits import service as benefits
from gonghui.clock import local_day, now
from gonghui.db import is_sqlite, on_commit, rowcount
from gonghui.errors import Conflict, DomainError

LOTTERY_KINDS = {ActivityKind.LOTTERY, ActivityKind.QUIZ_LOTTERY}

DRAWS = MetricCounter(
    "gonghui_lottery_draws", "Draws committed, by outcome (won, no_prize, ...)", ["outcome"]
)


@dataclass(frozen=True)
class ChanceScopes:
    free_today: str
    earned: str = "earned"


def chance_scopes() -> ChanceScopes:
    return ChanceScopes(free_today=f"free:{local_day().isoformat()}")


@dataclass(frozen=True, slots=True)
class _Prize:
    """A prize of a published pool as a draw picks it. Fixed from publication on (its
    stock, which is not, is taken in SQL), so one copy serves every batch of draws."""

    id: int
    position: int
    name: str
    kind: PrizeKind
    value: int
    weight: int


_POOL = (
    select(
        PoolPrize.id,
        PoolPrize.position,
        PoolPrize.name,
        PoolPrize.kind,
        PoolPrize.value,
        PoolPrize.weight,
    )
    .where(PoolPrize.activity_id == bindparam("a"))
    .order_by(PoolPrize.position)
)
# (activity id, seed) -> its pool. The pool is written with the seed when the lottery is
# published and never again; the seed tells a database recreated under the same ids apart.
_pools: dict[tuple[int, str], tuple[_Prize, ...]] = {}
_POOLS_MAX = 1_000


def _pool(session: Session, activity: Activity) -> tuple[_Prize, ...]:
    """The prize pool of a published lottery, read once per process."""
    assert activity.seed is not None
    key = (activity.id, activity.seed)
    pool = _pools.get(key)
    if pool is None:
        pool = tuple(_Prize(*row) for row in session.execute(_POOL, {"a": activity.id}))
        if len(_pools) >= _POOLS_MAX:
            _pools.clear()
        _pools[key] = pool
    return pool


Outcome = dict[str, Any] | DomainError


@dataclass(frozen=True)
class _Call:
    """One member's draw as the writer got it, and where its answer goes."""

    index: int
    member: MemberInfo
    activity_id: int
    entropy: str
    key: str | None

    @property
    def member_id(self) -> int:
        return self.member.membership_id


@dataclass
class _Drawn:
    """A draw that goes ahead, as it is worked out."""

    call: _Call
    draw_no: int = 0
    roll: str = ""
    picked: _Prize | None = None
    outcome: DrawOutcome = DrawOutcome.NO_PRIZE
    benefit: str | None = None
    draw_id: int = 0
    at: datetime | None = None


@dataclass
class _Takes:
    """Stock and budget won in a call of :func:`draw_many`: taken as each activity's
    winners are known (``deferred`` False), or all at its end (see the module's
    docstring)."""

    deferred: bool
    # prize id -> units; activity id -> (cents, points)
    stock: dict[int, int] = field(default_factory=dict)
    budget: dict[int, tuple[int, int]] = field(default_factory=dict)

    def add(self, activity_id: int, stock: dict[int, int], cents: int, points: int) -> None:
        for prize_id, units in stock.items():
            self.stock[prize_id] = self.stock.get(prize_id, 0) + units
        if cents or points:
            was_cents, was_points = self.budget.get(activity_id, (0, 0))
            self.budget[activity_id] = (was_cents + cents, was_points + points)

    def take(self, session: Session) -> None:
        """Take everything added, in prize then activity order; raises if a row no longer
        holds what was counted on."""
        lost: type[Exception] = hotwrite.RunAgain if self.deferred else RuntimeError
        connection = session.connection()
        for prize_id, units in sorted(self.stock.items()):
            if rowcount(connection.execute(_take_stock(), {"p": prize_id, "k": units})) != 1:
                raise lost(f"the stock of prize {prize_id} was taken meanwhile")
        for activity_id, (cents, points) in sorted(self.budget.items()):
            if not benefits.charge_budget(
                session, activity_id=activity_id, cents=cents, points=points
            ):
                raise lost(f"the budget of activity {activity_id} was spent meanwhile")
        self.stock.clear()
        self.budget.clear()


def draw_many(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    """Draw once for each call (keyword arguments of :func:`draw`); each call's answer, or
    the DomainError that refuses it, in the same order."""
    takes = _Takes(deferred=hotwrite.first_try(session) and not is_sqlite(session))
    outcomes: list[Outcome | None] = [None] * len(calls)
    pending = [
        _Call(
            index=i,
            member=call["member"],
            activity_id=call["activity_id"],
            entropy=call["client_entropy"],
            key=call["idempotency_key"],
        )
        for i, call in enumerate(calls)
    ]
    for round_ in hotwrite.rounds(pending, lambda call: call.member_id):
        by_activity: dict[int, list[_Call]] = {}
        for call in round_:
            by_activity.setdefault(call.activity_id, []).append(call)
        # Activities in id order, so that batches take their prizes' rows in one order.
        for activity_id, group in sorted(by_activity.items()):
            _draw_round(session, activity_id, group, outcomes, takes)
    takes.take(session)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


@hotwrite.batched(draw_many)
def draw(
    session: Session,
    *,
    member: MemberInfo,
    activity_id: int,
    client_entropy: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Draw once in ``activity_id``; a retry with the same key gets the same answer."""
    result: dict[str, Any] = hotwrite.one(
        draw_many,
        session,
        member=member,
        activity_id=activity_id,
        client_entropy=client_entropy,
        idempotency_key=idempotency_key,
    )
    return result


def _draw_round(
    session: Session,
    activity_id: int,
    calls: list[_Call],
    outcomes: list[Outcome | None],
    takes: _Takes,
) -> None:
    """One round of one activity's draws (each member once); fills in ``outcomes``."""

    def work(fresh: list[_Call]) -> None:
        activity, going = live_round(
            session, fresh, outcomes, activity_id=activity_id, kinds=LOTTERY_KINDS
        )
        if activity is not None:
            _draw_live(session, activity, going, outcomes, takes)

    idempotency.keyed_round(
        session,
        calls,
        outcomes,
        operation=lambda call: f"lottery.draw:{activity_id}",
        work=work,
    )


def _claim_chances(
    session: Session, activity: Activity, rules: LotteryRules, calls: list[_Call]
) -> dict[int, str]:
    """Take one chance for each member: a free one of today's, else an earned one. Returns
    the scope each member's chance came from; members not in it have none left."""
    scopes = chance_scopes()
    members = [call.member_id for call in calls]
    free: set[int] = set()
    if rules.free_draws_per_day:
        free = counters.claim_many(
            session,
            activity_id=activity.id,
            members=members,
            scope=scopes.free_today,
            granted=rules.free_draws_per_day,
        )
    earned = counters.claim_many(
        session,
        activity_id=activity.id,
        members=[m for m in members if m not in free],
        scope=scopes.earned,
        granted=0,
    )
    return dict.fromkeys(free, scopes.free_today) | dict.fromkeys(earned, scopes.earned)


def _draw_live(
    session: Session,
    activity: Activity,
    calls: list[_Call],
    outcomes: list[Outcome | None],
    takes: _Takes,
) -> None:
    """Chances, limits, numbers, rolls, prizes, the log and the answers, for members who
    may draw in ``activity`` now."""
    rules = lottery_rules(activity)
    assert rules is not None
    assert activity.seed is not None
    chances = _claim_chances(session, activity, rules, calls)
    for call in calls:
        if call.member_id not in chances:
            outcomes[call.index] = Conflict(LotteryError.NO_CHANCES, "no draw chances left")
    calls = [call for call in calls if call.member_id in chances]
    refused = claim_participations(session, activity=activity, members=[c.member for c in calls])
    for scope in set(chances.values()):
        counters.release_many(
            session,
            activity_id=activity.id,
            members=[m for m in refused if chances[m] == scope],
            scope=scope,
        )
    for call in calls:
        if call.member_id in refused:
            outcomes[call.index] = refused[call.member_id]
    drawn = [_Drawn(call) for call in calls if call.member_id not in refused]
    if not drawn:
        return
    numbers = counters.next_numbers(
        session,
        activity_id=activity.id,
        members=[d.call.member_id for d in drawn],
        scope="draws",
    )
    pool = _pool(session, activity)
    weights = [prize.weight for prize in pool]
    pseudonymous = fairness.pseudonymous(activity.seed, activity.seed_commitment)
    for d in drawn:
        d.draw_no = numbers[d.call.member_id]
        member: int | str = d.call.member_id
        if pseudonymous:
            member = fairness.pseudonym(activity_id=activity.id, membership_id=d.call.member_id)
        d.roll = fairness.roll(
            seed=activity.seed,
            activity_id=activity.id,
            member=member,
            draw_no=d.draw_no,
            entropy=d.call.entropy,
        )
        d.picked = pool[fairness.pick(d.roll, weights)]
    _hand_out(session, activity, rules, drawn, takes)
    _log(session, activity, drawn)
    left = counters.remaining_many(
        session,
        activity_id=activity.id,
        members=[d.call.member_id for d in drawn],
        scopes={chance_scopes().free_today: rules.free_draws_per_day, chance_scopes().earned: 0},
    )
    for d in drawn:
        outcomes[d.call.index] = _answer(d, sum(left[d.call.member_id].values()))


@cache
def _stock(*, lock: bool) -> Select[int, int]:
    read = (
        select(PoolPrize.id, PoolPrize.stock)
        .where(PoolPrize.activity_id == bindparam("a"))
        .order_by(PoolPrize.id)
    )
    return read.with_for_update() if lock else read


@cache
def _take_stock() -> Update:
    return (
        update(PoolPrize)
        .where(PoolPrize.id == bindparam("p"), PoolPrize.stock >= bindparam("k"))
        .values(stock=PoolPrize.stock - bindparam("k"))
    )


def _hand_out(
    session: Session, activity: Activity, rules: LotteryRules, drawn: list[_Drawn], takes: _Takes
) -> None:
    """Each draw that picked a prize wins it, in order, while the member is under the win
    cap, the prize has stock and the budget covers it; stock and budget are taken once for
    all the winners (now, or with ``takes`` deferred at the end of the call)."""
    candidates = [d for d in drawn if d.picked is not None and d.picked.kind != PrizeKind.NONE]
    if not candidates:
        return
    capped: set[int] = set()
    if rules.max_wins_per_member is not None:
        members = [d.call.member_id for d in candidates]
        under_cap = counters.claim_many(
            session,
            activity_id=activity.id,
            members=members,
            scope="wins",
            granted=rules.max_wins_per_member,
        )
        capped = set(members) - under_cap
    lock = not takes.deferred
    statement = _stock(lock=lock)
    stock: dict[int, int] = dict(session.connection().execute(statement, {"a": activity.id}).all())
    budget = benefits.budget_left(session, activity_id=activity.id, lock=lock)
    # What this call's earlier rounds won, not yet taken.
    for prize_id in stock:
        stock[prize_id] -= takes.stock.get(prize_id, 0)
    budget.spend(*takes.budget.get(activity.id, (0, 0)))
    taken: dict[int, int] = {}
    cents = points = 0
    missed: list[int] = []
    for d in candidates:
        prize = d.picked
        assert prize is not None
        cost_cents = prize.value if prize.kind == PrizeKind.VOUCHER else 0
        cost_points = prize.value if prize.kind == PrizeKind.POINTS else 0
        if d.call.member_id in capped:
            d.outcome = DrawOutcome.WIN_CAP
            continue
        if stock[prize.id] < 1:
            d.outcome = DrawOutcome.OUT_OF_STOCK
        elif not budget.take(cents=cost_cents, points=cost_points):
            d.outcome = DrawOutcome.BUDGET
        else:
            d.outcome = DrawOutcome.WON
            stock[prize.id] -= 1
            taken[prize.id] = taken.get(prize.id, 0) + 1
            cents, points = cents + cost_cents, points + cost_points
            continue
        missed.append(d.call.member_id)
    if rules.max_wins_per_member is not None:
        counters.release_many(session, activity_id=activity.id, members=missed, scope="wins")
    if not budget.exists:  # nothing to charge
        cents = points = 0
    takes.add(activity.id, taken, cents, points)
    if not takes.deferred:
        takes.take(session)
    _issue(session, activity, rules, [d for d in candidates if d.outcome is DrawOutcome.WON])


def _issue(
    session: Session, activity: Activity, rules: LotteryRules, winners: list[_Drawn]
) -> None:
    """The winners' vouchers, points and physical prizes, with their ledger rows."""
    source = f"lottery:{activity.id}"
    by_prize: dict[int, list[_Drawn]] = {}
    for d in winners:
        assert d.picked is not None
        by_prize.setdefault(d.picked.position, []).append(d)
    for position, group in by_prize.items():
        prize = group[0].picked
        assert prize is not None
        spec = rules.prizes[position]
        members = [d.call.member_id for d in group]
        if prize.kind == PrizeKind.VOUCHER:
            ids = benefits.issue_vouchers(
                session,
                members=members,
                activity_id=activity.id,
                name=prize.name,
                value_cents=prize.value,
                threshold_cents=spec.threshold_cents,
                valid_days=spec.valid_days,
                source=source,
                merchant_ids=spec.merchant_ids,
            )
            refs = [f"voucher:{i}" for i in ids]
        elif prize.kind == PrizeKind.POINTS:
            benefits.add_points_many(
                session, members=members, activity_id=activity.id, points=prize.value, source=source
            )
            refs = [f"points:{prize.value}"] * len(group)
        else:
            ids = benefits.issue_prizes(
                session,
                members=members,
                activity_id=activity.id,
                name=prize.name,
                address_deadline=now() + timedelta(hours=rules.address_deadline_hours),
                source=source,
            )
            refs = [f"prize:{i}" for i in ids]
        for d, ref in zip(group, refs, strict=True):
            d.benefit = ref


_INSERT_DRAWS = insert(Draw).returning(Draw.id, sort_by_parameter_order=True)


def _log(session: Session, activity: Activity, drawn: list[_Drawn]) -> None:
    """The draws' rows (the ordered draw log the proof publishes), and a hook event per win."""
    instant = now()
    rows = []
    for d in drawn:
        assert d.picked is not None
        rows.append(
            {
                "activity_id": activity.id,
                "membership_id": d.call.member_id,
                "draw_no": d.draw_no,
                "client_entropy": d.call.entropy,
                "roll": d.roll,
                "picked_position": d.picked.position,
                "prize_position": d.picked.position if d.outcome is DrawOutcome.WON else None,
                "outcome": d.outcome,
                "benefit_ref": d.benefit,
                "at": instant,
            }
        )
    ids = session.connection().execute(_INSERT_DRAWS, rows).scalars()
    for d, draw_id in zip(drawn, ids, strict=True):
        d.draw_id = draw_id
        d.at = instant
    won = [d for d in drawn if d.outcome is DrawOutcome.WON and d.picked is not None]
    # The wins' events at once (a subscriber writes their rows together), each the drawing
    # member's request's (its deliveries' logs say so).
    hooks.emit_many(
        session,
        org_id=activity.org_id,
        event=hooks.OrgEvent.PRIZE_WON,
        payloads=[
            {
                "activity_id": activity.id,
                "membership_id": d.call.member_id,
                "draw_id": d.draw_id,
                "prize": {"name": p.name, "kind": str(p.kind), "value": p.value},
            }
            for d in won
            if (p := d.picked) is not None
        ],
        request_ids=[hotwrite.request_id_of(d.call.index) for d in won],
    )
    outcomes = Counter(str(d.outcome) for d in drawn)
    on_commit(session, lambda: _count(outcomes))


def _count(outcomes: Counter[str]) -> None:
    for outcome, n in outcomes.items():
        DRAWS.labels(outcome).inc(n)


def _answer(d: _Drawn, chances_left: int) -> dict[str, Any]:
    picked = d.picked
    assert picked is not None
    won = d.outcome is DrawOutcome.WON
    return {
        "draw_id": d.draw_id,
        "activity_id": d.call.activity_id,
        "draw_no": d.draw_no,
        "outcome": str(d.outcome),
        "won": won,
        "prize": (
            {
                "position": picked.position,
                "name": picked.name,
                "kind": str(picked.kind),
                "value": picked.value,
            }
            if won
            else None
        ),
        "benefit": d.benefit,
        "roll": d.roll,
        "chances_left": chances_left,
        "at": d.at.isoformat() if d.at else None,
    }

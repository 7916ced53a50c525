"""Members claim coupons of a voucher grab; the coupons are sent after the claim commits.

A claim (:func:`claim`, a hot operation of the writer) checks the campaign is live for the
member, the stock is open, the member's WeChat is linked for the stock's app and the
member's limits (per stock, and the activity's total and daily); takes one coupon of the
stock (``claimed < max_coupons``), then one of the member's org's share when the campaign
caps it (:mod:`.org_shares`); writes the claim in state ``sending`` with a fresh
``out_request_no``; and queues ``vouchers.send_coupon`` in the same transaction. So a claim
the member was told of is never lost, and none passes a stock or a limit under any
concurrency.

The hot writer hands every claim waiting for it to :func:`claim_many` (a claim alone is
that batch of one), which reads the stocks and the members' openids once for the batch,
claims the members' limits in member order with a statement per limit, works out in batch
order which claims the stocks and the orgs' shares still cover (a member's second claim
in a batch comes after everyone's first), and writes the claims and their send tasks with
a multi-row INSERT each. Every claim gets the outcome it would have got claimed alone, one
after another (``tests/activities/voucher_grab/test_claims_batch.py``), and one that is
refused leaves nothing written. The stocks, then the orgs' shares (in org order), are
taken last, by conditional updates for the batch's coupons (``claimed + k <=
max_coupons``, ``claimed + k <= max_per_org``). On PostgreSQL a writer's first try reads
them unlocked, as draws do (see :mod:`gonghui.activities.lottery.draw`): if another writer
took them meanwhile, a condition fails and the batch runs again (``hotwrite.RunAgain``),
this time locking them (``SELECT ... FOR UPDATE``, missing shares created first) before it
works the outcomes out, as every run does on SQLite (one writer) and outside the writer.

The task sends the coupon with the claim's ``out_request_no`` until WeChat Pay answers:
no answer (a timeout, a 5xx, an answer that fails verification) is retried with backoff
and the same number, which WeChat Pay answers with the coupon it sent the first time, so
a coupon is never sent twice, even when a worker dies between the send and its record.
Sends run in groups (:func:`gonghui.tasks.grouped`: the claims of every transaction since
the relay's last pass, up to a hundred): one read, the calls made concurrently from a
bounded pool of sender threads, and one write transaction for every answer and the run's
completion, each unanswered claim retried by its own count. So a send costs a worker
a share of two transactions, not two of its own, and the writer is left to the claims.
While members keep this host's hot writer busy (the opening minute), sends wait for the
rush to pass, at most :data:`SEND_HOLD_S` (:func:`gonghui.hotwrite.busy`): the claims,
which members contend for, come first; the coupons follow at WeChat Pay's pace.
A refusal (WeChat Pay answered 4xx) fails the claim and gives back its coupon to the stock,
the member's turns (per stock, and the activity's total and daily) and the org's share;
except while the stock is paused (here, or at WeChat Pay): then the send waits for it to
restart, within a bound (:mod:`.waiting`). Calls keep to WeChat Pay's pace per merchant
(:mod:`gonghui.pacing`); one answered 429 is retried like no answer.

A coupon spent arrives as WeChat Pay's ``COUPON.USE`` notification
(:mod:`gonghui.payments`): the claim becomes ``used`` and the ledger says so, once.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, Update, bindparam, insert, select, update
from sqlalchemy.orm import Session

from gonghui import hooks, hotwrite, idempotency, tasks
from gonghui.accounts.identities import wechat_openids
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import Activity, ActivityKind
from gonghui.activities.participation import (
    count_participations,
    live_activities,
    participated,
    release_participation,
    release_participations,
)
from gonghui.activities.voucher_grab import org_shares, waiting
from gonghui.activities.voucher_grab.models import SEND_COUPON as SEND_COUPON
from gonghui.activities.voucher_grab.models import (
    ClaimState,
    StockStatus,
    VoucherClaim,
    VoucherStock,
)
from gonghui.benefits import service as benefits
from gonghui.benefits.models import LedgerAction
from gonghui.clock import now
from gonghui.db import is_sqlite, rowcount, unit_of_work
from gonghui.errors import Conflict, DomainError, NotFound, ServiceUnavailable
from gonghui.integrations import wechatpay
from gonghui.observability import request_scope
from gonghui.payments import service as payments
from gonghui.settings import get_settings

log = logging.getLogger(__name__)

OPERATION = "vouchers.claim"


class ShownClaim(Protocol):
    """What :func:`claim_view` shows of a claim (a stored one, or one just written)."""

    @property
    def id(self) -> int: ...
    @property
    def activity_id(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def coupon_id(self) -> str | None: ...
    @property
    def claimed_at(self) -> datetime: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def used_at(self) -> datetime | None: ...


class ShownStock(Protocol):
    """What :func:`claim_view` shows of a claim's stock."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def coupon_amount_cents(self) -> int: ...
    @property
    def threshold_cents(self) -> int: ...


def claim_view(claim: ShownClaim, stock: ShownStock) -> dict[str, Any]:
    return {
        "id": claim.id,
        "activity_id": claim.activity_id,
        "stock_id": stock.id,
        "name": stock.name,
        "coupon_amount_cents": stock.coupon_amount_cents,
        "threshold_cents": stock.threshold_cents,
        "state": str(claim.state),
        "coupon_id": claim.coupon_id,
        "claimed_at": claim.claimed_at.isoformat(),
        "sent_at": claim.sent_at.isoformat() if claim.sent_at else None,
        "used_at": claim.used_at.isoformat() if claim.used_at else None,
    }


Outcome = dict[str, Any] | DomainError


@dataclass(frozen=True)
class _Call:
    """One member's claim as the writer got it (:func:`claim`'s arguments)."""

    index: int
    member: MemberInfo
    activity_id: int
    stock_id: int
    key: str | None

    @property
    def member_id(self) -> int:
        return self.member.membership_id


@dataclass(frozen=True, slots=True)
class _Stock:
    """A stock as the batch read it: its terms, and how many coupons were claimed then."""

    id: int
    activity_id: int
    status: str
    appid: str
    max_per_member: int
    max_coupons: int
    claimed: int
    name: str
    coupon_amount_cents: int
    threshold_cents: int


@dataclass
class _Claim:
    """A claim that goes ahead, as it is worked out and written."""

    call: _Call
    activity: Activity
    stock: _Stock
    openid: str
    out_request_no: str = ""
    id: int = 0
    claimed_at: datetime = field(default_factory=now)
    state: str = ClaimState.SENDING
    coupon_id: str | None = None
    sent_at: datetime | None = None
    used_at: datetime | None = None

    @property
    def activity_id(self) -> int:
        return self.activity.id

    @property
    def member_id(self) -> int:
        return self.call.member_id


@dataclass
class _Left:
    """The coupons the batch's claims may still take, of each stock and each org's share:
    as read (locked unless ``deferred``), less what the batch's earlier claims took; and
    what they took, taken from the rows at the end of the batch (see the module)."""

    deferred: bool
    stocks: dict[int, _Stock]
    # stock id -> coupons left; (activity id, org id) -> coupons its members hold
    coupons: dict[int, int] = field(default_factory=dict)
    held: dict[tuple[int, int], int] = field(default_factory=dict)
    # stock id -> coupons taken; activity id -> org id -> coupons taken
    taken: dict[int, int] = field(default_factory=dict)
    shares: dict[int, dict[int, int]] = field(default_factory=dict)
    caps: dict[int, int] = field(default_factory=dict)

    def read(self, session: Session, claims: list[_Claim]) -> None:
        """What is left of the claims' stocks and orgs' shares not read yet."""
        stock_ids = sorted({c.stock.id for c in claims} - set(self.coupons))
        if stock_ids and not self.deferred and not is_sqlite(session):
            # Locked now, after the members' counters (the order every batch takes them in).
            rows = session.connection().execute(_LOCK_STOCKS, {"ids": stock_ids})
            self.coupons.update({i: most - n for i, most, n in rows})
        for stock_id in stock_ids:
            stock = self.stocks[stock_id]
            self.coupons.setdefault(stock_id, stock.max_coupons - stock.claimed)
        orgs: dict[int, set[int]] = {}
        for c in claims:
            cap = org_shares.max_per_org(c.activity.config)
            if cap is not None and (c.activity.id, c.call.member.org_id) not in self.held:
                self.caps[c.activity.id] = cap
                orgs.setdefault(c.activity.id, set()).add(c.call.member.org_id)
        for activity_id, org_ids in sorted(orgs.items()):
            held = org_shares.claimed(
                session, activity_id=activity_id, org_ids=org_ids, lock=not self.deferred
            )
            self.held.update({(activity_id, org): n for org, n in held.items()})

    def refusal(self, c: _Claim) -> DomainError | None:
        """Why the claim gets no coupon (none left, or none of its org's share), or None:
        it takes one."""
        if self.coupons[c.stock.id] < 1:
            return Conflict(ActivitiesError.STOCK_EMPTY, "all the vouchers have been claimed")
        cap = self.caps.get(c.activity.id)
        org = (c.activity.id, c.call.member.org_id)
        if cap is not None and self.held[org] >= cap:
            return Conflict(
                ActivitiesError.ORG_LIMIT,
                "the members of your union have claimed all of its share of these vouchers",
                {"max_per_org": cap},
            )
        self.coupons[c.stock.id] -= 1
        self.taken[c.stock.id] = self.taken.get(c.stock.id, 0) + 1
        if cap is not None:
            self.held[org] += 1
            shares = self.shares.setdefault(c.activity.id, {})
            shares[org[1]] = shares.get(org[1], 0) + 1
        return None

    def take(self, session: Session) -> None:
        """Take every coupon the batch's claims took: the stocks in stock order, then the
        orgs' shares in activity and org order."""
        lost: type[Exception] = hotwrite.RunAgain if self.deferred else RuntimeError
        connection = session.connection()
        for stock_id, k in sorted(self.taken.items()):
            if rowcount(connection.execute(_TAKE_STOCK, {"p": stock_id, "k": k})) != 1:
                raise lost(f"the coupons of stock {stock_id} were taken meanwhile")
        for activity_id, counts in sorted(self.shares.items()):
            taken = org_shares.take_many(
                session, activity_id=activity_id, cap=self.caps[activity_id], counts=counts
            )
            if len(taken) != len(counts):
                raise lost(f"an org's share of activity {activity_id} was taken meanwhile")
        self.taken.clear()
        self.shares.clear()


_STOCKS: Select[int, int, str, str, int, int, int, str, int, int] = select(
    VoucherStock.id,
    VoucherStock.activity_id,
    VoucherStock.status,
    VoucherStock.appid,
    VoucherStock.max_per_member,
    VoucherStock.max_coupons,
    VoucherStock.claimed,
    VoucherStock.name,
    VoucherStock.coupon_amount_cents,
    VoucherStock.threshold_cents,
).where(VoucherStock.id.in_(bindparam("ids", expanding=True)))

_LOCK_STOCKS: Select[int, int, int] = (
    select(VoucherStock.id, VoucherStock.max_coupons, VoucherStock.claimed)
    .where(VoucherStock.id.in_(bindparam("ids", expanding=True)))
    .order_by(VoucherStock.id)
    .with_for_update()
)

_TAKE_STOCK: Update = (
    update(VoucherStock)
    .where(
        VoucherStock.id == bindparam("p"),
        VoucherStock.claimed + bindparam("k") <= VoucherStock.max_coupons,
    )
    .values(claimed=VoucherStock.claimed + bindparam("k"))
)

# The new ids are matched to their claims by request number, not by the order of the rows
# (see ``_INSERT_ORDERS`` in :mod:`gonghui.mall.checkout`).
_INSERT_CLAIMS = insert(VoucherClaim).returning(VoucherClaim.out_request_no, VoucherClaim.id)


def claim_many(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    """Claim one coupon for each call (keyword arguments of :func:`claim`); each call's
    answer, or the DomainError that refuses it, in the same order."""
    outcomes: list[Outcome | None] = [None] * len(calls)
    pending = [
        _Call(
            index=i,
            member=call["member"],
            activity_id=call["activity_id"],
            stock_id=call["stock_id"],
            key=call["idempotency_key"],
        )
        for i, call in enumerate(calls)
    ]
    stocks = {
        row.id: _Stock(*row)
        for row in session.connection().execute(
            _STOCKS, {"ids": sorted({call.stock_id for call in pending})}
        )
    }
    openids = _openids(session, pending, stocks)
    # On PostgreSQL a first try reads the stocks and shares unlocked (see the module).
    left = _Left(deferred=hotwrite.first_try(session) and not is_sqlite(session), stocks=stocks)
    for round_ in hotwrite.rounds(pending, lambda call: call.member_id):
        _claim_round(session, round_, outcomes, openids, left)
    left.take(session)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


@hotwrite.batched(claim_many)
def claim(
    session: Session,
    *,
    member: MemberInfo,
    activity_id: int,
    stock_id: int,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Hot operation: one coupon of ``stock_id`` for the member (see the module)."""
    result: dict[str, Any] = hotwrite.one(
        claim_many,
        session,
        member=member,
        activity_id=activity_id,
        stock_id=stock_id,
        idempotency_key=idempotency_key,
    )
    return result


def _openids(
    session: Session, calls: list[_Call], stocks: dict[int, _Stock]
) -> dict[tuple[int, str], str]:
    """(member, appid) -> the member's openid in the app of the stock they claim, where
    they have one; read once for the batch."""
    by_app: dict[str, set[int]] = {}
    for call in calls:
        stock = stocks.get(call.stock_id)
        if stock is not None:
            by_app.setdefault(stock.appid, set()).add(call.member_id)
    found: dict[tuple[int, str], str] = {}
    for appid, members in sorted(by_app.items()):
        openids = wechat_openids(session, membership_ids=sorted(members), appid=appid)
        found.update({(member, appid): openid for member, openid in openids.items()})
    return found


def _claim_round(
    session: Session,
    calls: list[_Call],
    outcomes: list[Outcome | None],
    openids: dict[tuple[int, str], str],
    left: _Left,
) -> None:
    """One round of claims (each member once); fills in ``outcomes``."""

    def work(going: list[_Call]) -> None:
        claims = _open(session, going, outcomes, left.stocks, openids)
        claims = _count(session, claims, outcomes)
        if not claims:
            return
        left.read(session, claims)
        refused = []
        for c in claims:
            refusal = left.refusal(c)
            if refusal is not None:
                outcomes[c.call.index] = refusal
                refused.append(c)
        _give_back(session, refused)
        claims = [c for c in claims if outcomes[c.call.index] is None]
        _write(session, claims)
        for c in claims:
            outcomes[c.call.index] = claim_view(c, c.stock)

    idempotency.keyed_round(
        session, calls, outcomes, operation=lambda call: f"{OPERATION}:{call.stock_id}", work=work
    )


def _open(
    session: Session,
    calls: list[_Call],
    outcomes: list[Outcome | None],
    stocks: dict[int, _Stock],
    openids: dict[tuple[int, str], str],
) -> list[_Claim]:
    """The calls whose campaign is live for the member, whose stock is open and whose
    member has WeChat linked for it; the others get why not in ``outcomes``."""
    by_activity: dict[int, list[_Call]] = {}
    for call in calls:
        by_activity.setdefault(call.activity_id, []).append(call)
    live: dict[int, Activity | DomainError] = {}
    for activity_id, group in sorted(by_activity.items()):
        found = live_activities(
            session,
            members=[call.member for call in group],
            activity_id=activity_id,
            kinds={ActivityKind.VOUCHER_GRAB},
        )
        live.update({call.index: answer for call, answer in zip(group, found, strict=True)})
    claims = []
    for call in calls:
        try:
            activity = live[call.index]
            if isinstance(activity, DomainError):
                raise activity
            stock = _open_stock(stocks.get(call.stock_id), activity, call.stock_id)
            openid = openids.get((call.member_id, stock.appid))
            if openid is None:
                raise Conflict(
                    ActivitiesError.WECHAT_NOT_LINKED,
                    "vouchers arrive in WeChat: sign in once through the union's WeChat mini "
                    "program to link your WeChat, then claim",
                    {"appid": stock.appid},
                )
        except DomainError as exc:
            outcomes[call.index] = exc
            continue
        claims.append(_Claim(call, activity, stock, openid))
    return claims


def _open_stock(stock: _Stock | None, activity: Activity, stock_id: int) -> _Stock:
    """The activity's stock ``stock_id`` if it is open for claims; raises why not."""
    if stock is None or stock.activity_id != activity.id:
        raise NotFound(ActivitiesError.STOCK_NOT_FOUND, f"voucher stock {stock_id} not found")
    if stock.status == StockStatus.PAUSED:
        raise Conflict(
            ActivitiesError.STOCK_PAUSED,
            "the union has paused these vouchers for now; try again later",
            {"status": str(stock.status)},
        )
    if stock.status != StockStatus.RUNNING:
        raise Conflict(
            ActivitiesError.STOCK_NOT_OPEN,
            "these vouchers are not open yet"
            if stock.status == StockStatus.OPENING
            else "these vouchers cannot be claimed",
            {"status": str(stock.status)},
        )
    return stock


def _count(session: Session, claims: list[_Claim], outcomes: list[Outcome | None]) -> list[_Claim]:
    """Count each claim against the member's limit of its stock, then against the
    activity's limits (per member, in all and per day): a statement per stock and limit,
    in member order. The claims refused get why in ``outcomes``, and nothing counted."""
    by_stock: dict[int, list[_Claim]] = {}
    for c in claims:
        by_stock.setdefault(c.stock.id, []).append(c)
    counted: list[_Claim] = []
    for stock_id, group in sorted(by_stock.items()):
        within = counters.claim_many(
            session,
            activity_id=group[0].activity.id,
            members=[c.member_id for c in group],
            scope=f"stock:{stock_id}",
            granted=group[0].stock.max_per_member,
        )
        for c in group:
            if c.member_id in within:
                counted.append(c)
            else:
                outcomes[c.call.index] = Conflict(
                    ActivitiesError.STOCK_LIMIT, "you have claimed all you may of these"
                )
    by_activity: dict[int, list[_Claim]] = {}
    for c in counted:
        by_activity.setdefault(c.activity.id, []).append(c)
    over: list[_Claim] = []
    for _, group in sorted(by_activity.items()):
        refused = count_participations(
            session, activity=group[0].activity, members=[c.member_id for c in group]
        )
        for c in group:
            if c.member_id in refused:
                outcomes[c.call.index] = refused[c.member_id]
                over.append(c)
    _give_back_stock_turns(session, over)
    # In batch order again: the stocks and shares go to the claims in that order.
    return sorted((c for c in counted if outcomes[c.call.index] is None), key=_batch_order)


def _batch_order(c: _Claim) -> int:
    return c.call.index


def _give_back_stock_turns(session: Session, claims: list[_Claim]) -> None:
    """The members' turns of their stocks, counted for claims then refused."""
    by_stock: dict[int, list[_Claim]] = {}
    for c in claims:
        by_stock.setdefault(c.stock.id, []).append(c)
    for stock_id, group in sorted(by_stock.items()):
        counters.release_many(
            session,
            activity_id=group[0].activity.id,
            members=[c.member_id for c in group],
            scope=f"stock:{stock_id}",
        )


def _give_back(session: Session, claims: list[_Claim]) -> None:
    """Everything counted for claims then refused (no coupon, or none of the org's
    share): the members' turns of their stocks and of their activities."""
    _give_back_stock_turns(session, claims)
    by_activity: dict[int, list[_Claim]] = {}
    for c in claims:
        by_activity.setdefault(c.activity.id, []).append(c)
    for _, group in sorted(by_activity.items()):
        release_participations(
            session, activity=group[0].activity, members=[c.member_id for c in group]
        )


def _write(session: Session, claims: list[_Claim]) -> None:
    """The claims, ``sending``, and their send tasks: a multi-row INSERT each; and the
    hook bus told that their members took part."""
    if not claims:
        return
    rows = []
    for c in claims:
        c.out_request_no = f"GH{c.stock.id}X{secrets.token_hex(12)}"
        rows.append(
            {
                "stock_id": c.stock.id,
                "activity_id": c.activity.id,
                "membership_id": c.member_id,
                "org_id": c.call.member.org_id,
                "openid": c.openid,
                "out_request_no": c.out_request_no,
                "state": ClaimState.SENDING,
                "claimed_at": c.claimed_at,
            }
        )
    ids: dict[str, int] = dict(session.connection().execute(_INSERT_CLAIMS, rows).all())
    for c in claims:
        c.id = ids[c.out_request_no]
    tasks.defer_many(
        session,
        SEND_COUPON,
        [{"claim_id": c.id} for c in claims],
        request_ids=[hotwrite.request_id_of(c.call.index) for c in claims],
    )
    for c in claims:
        # The event is the claiming member's request's (its deliveries' logs say so).
        with request_scope(hotwrite.request_id_of(c.call.index)):
            participated(session, activity=c.activity, members=[c.member_id])


def member_claims(
    session: Session,
    *,
    membership_id: int,
    activity_id: int | None = None,
    claim_id: int | None = None,
) -> list[dict[str, Any]]:
    """The member's claims (of one activity, with ``activity_id``; the one claim
    ``claim_id``, if it is hers), newest first, 200 at most."""
    query = (
        select(VoucherClaim, VoucherStock)
        .join(VoucherStock, VoucherStock.id == VoucherClaim.stock_id)
        .where(VoucherClaim.membership_id == membership_id)
    )
    if activity_id is not None:
        query = query.where(VoucherClaim.activity_id == activity_id)
    if claim_id is not None:
        query = query.where(VoucherClaim.id == claim_id)
    rows = session.execute(query.order_by(VoucherClaim.id.desc()).limit(200))
    return [claim_view(c, s) for c, s in rows]


def _dead(args: dict[str, Any], error: str) -> None:
    """Out of attempts with no answer from WeChat Pay: the claim stays ``sending`` (its
    coupon may have gone) with the error for operators, who requeue the task."""
    with unit_of_work() as session:
        row = session.get(VoucherClaim, int(args["claim_id"]))
        if row is not None:
            row.last_error = error[:300]


@dataclass(frozen=True)
class _Send:
    """A coupon to send: the claim's place in its group's batch, and what it reads."""

    n: int
    claim: VoucherClaim
    stock: VoucherStock
    org_id: int
    last: bool


@dataclass(frozen=True)
class _Sent:
    coupon_id: str


@dataclass(frozen=True)
class _Refused:
    error: str


@dataclass(frozen=True)
class _Waits:
    """The stock is paused (here; or at WeChat Pay, which refused the coupon)."""

    at_wechatpay: bool


_Answer = _Sent | _Refused | _Waits | tasks.Retry

# The coupon sends this process has in flight, at most ``voucher_send_concurrency``.
_senders: ThreadPoolExecutor | None = None
_senders_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _senders
    with _senders_lock:
        if _senders is None:
            _senders = ThreadPoolExecutor(
                get_settings().voucher_send_concurrency, thread_name_prefix="coupon-send"
            )
        return _senders


# While members' claims (or draws, votes) keep this host's hot writer busy, sends wait for
# the rush to pass, a coupon at most this long after its claim.
SEND_HOLD_S = 30.0


@tasks.grouped(
    SEND_COUPON,
    max_attempts=30,
    on_dead=_dead,
    hold_while=hotwrite.busy,
    hold_s=SEND_HOLD_S,
)
def send_coupons(batch: list[dict[str, Any]]) -> None:
    """Send a group's coupons (see the module) in three steps, with no transaction open
    while WeChat Pay is called: read the claims still ``sending``; send their coupons,
    ``voucher_send_concurrency`` at most at once in this process, each with its claim's
    ``out_request_no``; and record every answer with the run's completion in one write
    transaction. A claim WeChat Pay did not answer is retried by its own count (``last``:
    the send that waited longest, tried once more however its stock stands)."""
    ids = {int(one["claim_id"]) for one in batch}
    with unit_of_work(read_only=True) as session:
        found = {
            claim_row.id: (claim_row, stock, org_id)
            for claim_row, stock, org_id in session.execute(
                select(VoucherClaim, VoucherStock, Activity.org_id)
                .join(VoucherStock, VoucherStock.id == VoucherClaim.stock_id)
                .join(Activity, Activity.id == VoucherStock.activity_id)
                .where(VoucherClaim.id.in_(ids), VoucherClaim.state == ClaimState.SENDING)
            )
        }
    sends: list[_Send] = []
    for n, one in enumerate(batch):
        # A claim no longer sending (sent, failed, waiting) is done, as is a second row of
        # one claim (a requeued dead letter run with its retry).
        row = found.pop(int(one["claim_id"]), None)
        if row is not None:
            sends.append(_Send(n, *row, last=bool(one.get("last"))))
    client = wechatpay.WechatPayClient(wechatpay.configured_merchant())
    calls = {
        send.n: _pool().submit(_send, client, send)
        for send in sends
        if send.stock.status != StockStatus.PAUSED or send.last
    }
    answers: list[tuple[_Send, _Answer]] = [
        (send, calls[send.n].result() if send.n in calls else _Waits(at_wechatpay=False))
        for send in sends
    ]
    _record(answers)


def _send(client: wechatpay.WechatPayClient, send: _Send) -> _Answer:
    """One coupon's call to WeChat Pay (on a sender thread), and what its answer means."""
    request = {
        "stock_id": send.stock.wechat_stock_id,
        "out_request_no": send.claim.out_request_no,
        "appid": send.stock.appid,
        "stock_creator_mchid": client.merchant.mchid,
    }
    try:
        sent = client.call(
            "POST", f"/v3/marketing/favor/users/{send.claim.openid}/coupons", request
        )
    except wechatpay.WechatPayRefused as exc:
        try:
            paused = not send.last and waiting.paused_at_wechatpay(
                client, str(send.stock.wechat_stock_id)
            )
        except wechatpay.WechatPayUnavailable as unknown:
            return tasks.Retry(f"refused ({exc.message}); {unknown.message}")
        return _Waits(at_wechatpay=True) if paused else _Refused(exc.message)
    except wechatpay.WechatPayUnavailable as exc:
        return tasks.Retry(exc.message)
    except Exception as exc:  # the pace's counter unreachable, a bug: this claim only
        log.exception("coupon send of claim %s failed", send.claim.id)
        return tasks.Retry(f"{type(exc).__name__}: {exc}")
    return _Sent(str(sent["coupon_id"]))


def _record(answers: list[tuple[_Send, _Answer]]) -> None:
    """Every answer of a group, and the run's completion, in one transaction (a crash
    before it commits leaves both undone: the group runs again and WeChat Pay answers each
    ``out_request_no`` with the coupon it sent; ``tests/activities/voucher_grab/
    test_send_transactions.py``). A stock's claims are settled in stock order."""
    retry: dict[int, tasks.Retry] = {}
    with unit_of_work() as session:
        _sent(session, [(send, a.coupon_id) for send, a in answers if isinstance(a, _Sent)])
        held: dict[tuple[int, bool], list[_Send]] = {}
        for send, a in answers:
            if isinstance(a, _Waits):
                held.setdefault((send.stock.id, a.at_wechatpay), []).append(send)
        for (stock_id, at_wechatpay), group in sorted(held.items()):
            claim_ids = [send.claim.id for send in group]
            if not waiting.wait(
                session, stock_id=stock_id, claim_ids=claim_ids, paused_at_wechatpay=at_wechatpay
            ):
                for send in group:
                    retry[send.n] = tasks.Retry(
                        "the stock restarted while its send was about to wait", after_s=0
                    )
        refused = [(send, a.error) for send, a in answers if isinstance(a, _Refused)]
        for send, error in sorted(refused, key=lambda r: (r[0].stock.id, r[0].claim.id)):
            _refused(session, send.claim, error)
        retry |= {send.n: a for send, a in answers if isinstance(a, tasks.Retry)}
        tasks.complete(session, retry=retry)


def _sent(session: Session, sent: list[tuple[_Send, str]]) -> None:
    """WeChat Pay sent these coupons: their claims (still ``sending``) are ``sent``, the
    ledger says so once each, and each activity's org hears of it."""
    if not sent:
        return
    moved = set(
        session.scalars(
            select(VoucherClaim.id)
            .where(
                VoucherClaim.id.in_([send.claim.id for send, _ in sent]),
                VoucherClaim.state == ClaimState.SENDING,
            )
            .with_for_update()
        )
    )
    sent = [(send, coupon_id) for send, coupon_id in sent if send.claim.id in moved]
    if not sent:
        return  # recorded by an earlier run
    at = now()
    session.connection().execute(
        _MARK_SENT,
        [{"claim": send.claim.id, "coupon": coupon_id, "at": at} for send, coupon_id in sent],
    )
    benefits.record_coupons(
        session,
        action=LedgerAction.ISSUE,
        source="wechatpay.coupon_sent",
        entries=[
            benefits.Entry(
                send.claim.membership_id,
                send.claim.activity_id,
                send.stock.coupon_amount_cents,
                {"coupon_id": coupon_id, "claim_id": send.claim.id, "stock_id": send.stock.id},
            )
            for send, coupon_id in sent
        ],
    )
    by_org: dict[int, list[_Send]] = {}
    for send, _ in sent:
        by_org.setdefault(send.org_id, []).append(send)
    for org_id, group in sorted(by_org.items()):
        hooks.emit_many(
            session,
            org_id=org_id,
            event=hooks.OrgEvent.VOUCHER_ISSUED,
            payloads=[
                {
                    "activity_id": send.claim.activity_id,
                    "membership_id": send.claim.membership_id,
                    "claim_id": send.claim.id,
                    "amount_cents": send.stock.coupon_amount_cents,
                }
                for send in group
            ],
        )


_MARK_SENT = (
    update(VoucherClaim)
    .where(VoucherClaim.id == bindparam("claim"))
    .values(
        state=ClaimState.SENT,
        coupon_id=bindparam("coupon"),
        sent_at=bindparam("at"),
        last_error=None,
    )  # fmt: skip
    .execution_options(synchronize_session=False)
)


def _refused(session: Session, claim_row: VoucherClaim, error: str) -> None:
    """WeChat Pay refused the coupon: the claim (still ``sending``) fails and gives back its
    coupon, the member's turns (per stock, in all and that day) and the org's share."""
    moved = session.execute(
        update(VoucherClaim)
        .where(VoucherClaim.id == claim_row.id, VoucherClaim.state == ClaimState.SENDING)
        .values(state=ClaimState.FAILED, last_error=error[:300])
    )
    if rowcount(moved) != 1:
        return
    session.execute(
        update(VoucherStock)
        .where(VoucherStock.id == claim_row.stock_id)
        .values(claimed=VoucherStock.claimed - 1)
    )
    counters.release_many(
        session,
        activity_id=claim_row.activity_id,
        members=[claim_row.membership_id],
        scope=f"stock:{claim_row.stock_id}",
    )
    release_participation(
        session,
        activity_id=claim_row.activity_id,
        membership_id=claim_row.membership_id,
        at=claim_row.claimed_at,
    )
    if claim_row.org_id is not None:
        org_shares.give_back(session, activity_id=claim_row.activity_id, org_id=claim_row.org_id)


@payments.handles("COUPON.USE")
def coupon_used(session: Session, notification: wechatpay.Notification) -> None:
    """WeChat Pay says a coupon was spent: the claim is ``used`` and the ledger says so."""
    coupon_id = str(notification.resource.get("coupon_id", ""))
    row = session.scalar(select(VoucherClaim).where(VoucherClaim.coupon_id == coupon_id))
    if row is None:
        # Sent, but its answer not recorded yet (the send task retries): refuse for now,
        # and WeChat Pay sends the notification again.
        raise ServiceUnavailable(
            "vouchers.coupon_unknown_yet", f"coupon {coupon_id} is not recorded yet"
        )
    if row.state != ClaimState.SENT:
        return
    row.state = ClaimState.USED
    row.used_at = now()
    stock = session.get(VoucherStock, row.stock_id)
    assert stock is not None
    consumed = notification.resource.get("consume_information") or {}
    benefits.record_coupons(
        session,
        action=LedgerAction.REDEEM,
        source="wechatpay.coupon_use",
        entries=[
            benefits.Entry(
                row.membership_id,
                row.activity_id,
                -stock.coupon_amount_cents,
                {
                    "coupon_id": coupon_id,
                    "claim_id": row.id,
                    "transaction_id": str(consumed.get("transaction_id", ""))[:64],
                    "notification_id": notification.id,
                },
            )
        ],
    )

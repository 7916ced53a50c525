"""Issuing, redeeming, expiring and revoking benefits; every change is a ledger row.

Budgets are charged with one conditional UPDATE, so concurrent issues never overspend;
members' points accounts are created and credited in member order, so that concurrent
writers (on PostgreSQL, any number of them) lock them in one order.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from gonghui import hooks, idempotency
from gonghui.audit import service as audit
from gonghui.benefits.addresses import seal_address
from gonghui.benefits.errors import BenefitsError
from gonghui.benefits.models import (
    Budget,
    LedgerAction,
    LedgerEntry,
    LedgerKind,
    PointsAccount,
    Prize,
    PrizeStatus,
    Voucher,
    VoucherStatus,
)
from gonghui.benefits.schemas import PrizeRead
from gonghui.clock import now
from gonghui.db import rowcount, upsert_insert
from gonghui.errors import Conflict, NotFound
from gonghui.members.models import Membership
from gonghui.tenancy import Actor

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def open_budget(
    session: Session, *, activity_id: int, cents_total: int | None, points_total: int | None
) -> Budget:
    """Open an activity's budget as it is published: nothing spent; None is no limit."""
    budget = Budget(activity_id=activity_id, cents_total=cents_total, points_total=points_total)
    session.add(budget)
    return budget


_CHARGE_BUDGET = (
    update(Budget)
    .where(
        Budget.activity_id == bindparam("a"),
        or_(
            Budget.cents_total.is_(None), Budget.cents_spent + bindparam("c") <= Budget.cents_total
        ),
        or_(
            Budget.points_total.is_(None),
            Budget.points_spent + bindparam("p") <= Budget.points_total,
        ),
    )
    .values(
        cents_spent=Budget.cents_spent + bindparam("c"),
        points_spent=Budget.points_spent + bindparam("p"),
    )
)


def charge_budget(session: Session, *, activity_id: int, cents: int = 0, points: int = 0) -> bool:
    """Spend from the activity's budget; False (and nothing spent) if it would overrun."""
    params = {"a": activity_id, "c": cents, "p": points}
    if rowcount(session.connection().execute(_CHARGE_BUDGET, params)) == 1:
        return True
    # No budget row at all means no budget was set.
    return session.get(Budget, activity_id) is None


def release_budget(session: Session, *, activity_id: int, cents: int) -> None:
    """Give back ``cents`` charged earlier (what it paid for was undone: a mall order
    cancelled or refunded)."""
    session.execute(
        update(Budget)
        .where(Budget.activity_id == activity_id, Budget.cents_spent >= cents)
        .values(cents_spent=Budget.cents_spent - cents)
        .execution_options(synchronize_session=False)
    )


@dataclass
class BudgetLeft:
    """What is left of an activity's budget (None: no limit), for handing it out to a batch
    in order before one :func:`charge_budget` charges the sum."""

    cents: int | None
    points: int | None
    # False when the activity has no budget at all (nothing to charge).
    exists: bool = True

    def spend(self, cents: int, points: int) -> None:
        """Count ``cents`` and ``points`` spent already (not yet charged)."""
        if self.cents is not None:
            self.cents -= cents
        if self.points is not None:
            self.points -= points

    def take(self, *, cents: int, points: int) -> bool:
        if (self.cents is not None and cents > self.cents) or (
            self.points is not None and points > self.points
        ):
            return False
        if self.cents is not None:
            self.cents -= cents
        if self.points is not None:
            self.points -= points
        return True


_BUDGET_READ = select(
    Budget.cents_total, Budget.cents_spent, Budget.points_total, Budget.points_spent
).where(Budget.activity_id == bindparam("a"))
_BUDGET_LEFT = _BUDGET_READ.with_for_update()


def budget_left(session: Session, *, activity_id: int, lock: bool = True) -> BudgetLeft:
    """The activity's budget left, its row locked until the transaction ends (PostgreSQL;
    SQLite's write lock already covers it). ``lock=False``: as last committed, for a
    caller that then charges it with :func:`charge_budget`, which may refuse."""
    statement = _BUDGET_LEFT if lock else _BUDGET_READ
    row = session.connection().execute(statement, {"a": activity_id}).first()
    if row is None:
        return BudgetLeft(cents=None, points=None, exists=False)
    cents_total, cents_spent, points_total, points_spent = row
    return BudgetLeft(
        cents=None if cents_total is None else cents_total - cents_spent,
        points=None if points_total is None else points_total - points_spent,
    )


def _entry(
    *,
    membership_id: int,
    activity_id: int | None,
    kind: LedgerKind,
    action: LedgerAction,
    amount: int,
    source: str,
    voucher_id: int | None = None,
    prize_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "membership_id": membership_id,
        "activity_id": activity_id,
        "kind": kind,
        "action": action,
        "amount": amount,
        "source": source,
        "voucher_id": voucher_id,
        "prize_id": prize_id,
        "details": details,
        "at": now(),
    }


_INSERT_LEDGER = insert(LedgerEntry)
_INSERT_VOUCHERS = insert(Voucher).returning(Voucher.id, sort_by_parameter_order=True)
_INSERT_PRIZES = insert(Prize).returning(Prize.id, sort_by_parameter_order=True)


def _ledger(session: Session, entries: Sequence[dict[str, Any]]) -> None:
    """Append ledger rows (see :func:`_entry`), one statement for them all."""
    if entries:
        session.connection().execute(_INSERT_LEDGER, list(entries))


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger row for a change whose thing lives elsewhere (see :func:`record_entries`)."""

    membership_id: int
    activity_id: int | None
    amount: int
    details: dict[str, Any]


def record_entries(
    session: Session,
    *,
    kind: LedgerKind,
    action: LedgerAction,
    source: str,
    entries: Sequence[Entry],
) -> None:
    """Ledger rows for changes whose things live elsewhere (a WeChat Pay coupon, a
    payment, a subsidy), one statement for them all; the callers' state changes make each
    happen once."""
    _ledger(
        session,
        [
            _entry(
                membership_id=e.membership_id,
                activity_id=e.activity_id,
                kind=kind,
                action=action,
                amount=e.amount,
                source=source,
                details=e.details,
            )
            for e in entries
        ],
    )


def record_entry(
    session: Session,
    *,
    membership_id: int,
    activity_id: int | None,
    kind: LedgerKind,
    action: LedgerAction,
    amount: int,
    source: str,
    details: dict[str, Any],
) -> None:
    """One ledger row (see :func:`record_entries`)."""
    record_entries(
        session,
        kind=kind,
        action=action,
        source=source,
        entries=[Entry(membership_id, activity_id, amount, details)],
    )


def record_coupons(
    session: Session, *, action: LedgerAction, source: str, entries: Sequence[Entry]
) -> None:
    """WeChat Pay coupons entering members' benefits (ISSUE, positive) or spent (REDEEM,
    negative): ledger rows only, as the coupons themselves live in WeChat Pay."""
    record_entries(session, kind=LedgerKind.VOUCHER, action=action, source=source, entries=entries)


def _voucher_out(
    voucher: Voucher,
    action: LedgerAction,
    source: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ledger row of a voucher leaving the wallet: redeemed, revoked or expired."""
    return _entry(
        membership_id=voucher.membership_id,
        activity_id=voucher.activity_id,
        kind=LedgerKind.VOUCHER,
        action=action,
        amount=-voucher.value_cents,
        voucher_id=voucher.id,
        source=source,
        details=details,
    )


def _voucher_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))


def issue_vouchers(
    session: Session,
    *,
    members: Sequence[int],
    activity_id: int | None,
    name: str,
    value_cents: int,
    threshold_cents: int,
    valid_days: int,
    source: str,
    merchant_ids: Sequence[int] = (),
) -> list[int]:
    """One voucher for each of ``members``, each with its ledger row; the vouchers' ids in
    the same order. With ``merchant_ids`` the vouchers are spent only at those merchants."""
    if not members:
        return []
    instant = now()
    rows = [
        {
            "membership_id": member,
            "activity_id": activity_id,
            "code": _voucher_code(),
            "name": name,
            "value_cents": value_cents,
            "threshold_cents": threshold_cents,
            "valid_from": instant,
            "valid_until": instant + timedelta(days=valid_days),
            "status": VoucherStatus.ISSUED,
            "issued_at": instant,
            "merchant_ids": list(merchant_ids) or None,
        }
        for member in members
    ]
    ids = list(session.connection().execute(_INSERT_VOUCHERS, rows).scalars())
    _ledger(
        session,
        [
            _entry(
                membership_id=member,
                activity_id=activity_id,
                kind=LedgerKind.VOUCHER,
                action=LedgerAction.ISSUE,
                amount=value_cents,
                voucher_id=voucher_id,
                source=source,
            )
            for member, voucher_id in zip(members, ids, strict=True)
        ],
    )
    return ids


def add_points_many(
    session: Session,
    *,
    members: Sequence[int],
    activity_id: int | None,
    points: int,
    source: str,
) -> None:
    """Add ``points`` (taken away when negative) to each of ``members``, with ledger rows."""
    if not members:
        return
    dialect_insert = upsert_insert(session.get_bind().dialect.name)
    connection = session.connection()
    # Accounts in member order: concurrent writers lock them in one order (PostgreSQL).
    ordered = sorted(members)
    connection.execute(
        dialect_insert(PointsAccount).on_conflict_do_nothing(),
        [{"membership_id": member, "balance": 0} for member in ordered],
    )
    connection.execute(
        update(PointsAccount)
        .where(PointsAccount.membership_id == bindparam("m_"))
        .values(balance=PointsAccount.balance + points),
        [{"m_": member} for member in ordered],
    )
    _ledger(
        session,
        [
            _entry(
                membership_id=member,
                activity_id=activity_id,
                kind=LedgerKind.POINTS,
                action=LedgerAction.ISSUE if points >= 0 else LedgerAction.REDEEM,
                amount=points,
                source=source,
            )
            for member in members
        ],
    )


def add_points(
    session: Session, *, membership_id: int, activity_id: int | None, points: int, source: str
) -> None:
    add_points_many(
        session, members=[membership_id], activity_id=activity_id, points=points, source=source
    )


def issue_prizes(
    session: Session,
    *,
    members: Sequence[int],
    activity_id: int | None,
    name: str,
    address_deadline: datetime | None,
    source: str,
) -> list[int]:
    """A physical prize for each of ``members``, awaiting an address, with ledger rows; the
    prizes' ids in the same order."""
    if not members:
        return []
    instant = now()
    rows = [
        {
            "membership_id": member,
            "activity_id": activity_id,
            "name": name,
            "status": PrizeStatus.AWAITING_ADDRESS,
            "address_deadline": address_deadline,
            "won_at": instant,
        }
        for member in members
    ]
    ids = list(session.connection().execute(_INSERT_PRIZES, rows).scalars())
    _ledger(
        session,
        [
            _entry(
                membership_id=member,
                activity_id=activity_id,
                kind=LedgerKind.PRIZE,
                action=LedgerAction.ISSUE,
                amount=1,
                prize_id=prize_id,
                source=source,
            )
            for member, prize_id in zip(members, ids, strict=True)
        ],
    )
    return ids


def member_voucher(session: Session, membership_id: int, voucher_id: int) -> Voucher:
    voucher = session.get(Voucher, voucher_id)
    if voucher is None or voucher.membership_id != membership_id:
        raise NotFound(BenefitsError.VOUCHER_NOT_FOUND, f"voucher {voucher_id} not found")
    return voucher


def _move_voucher(session: Session, voucher: Voucher, to: VoucherStatus) -> bool:
    """ISSUED → ``to`` exactly once, however many requests race for it."""
    result = session.execute(
        update(Voucher)
        .where(Voucher.id == voucher.id, Voucher.status == VoucherStatus.ISSUED)
        .values(status=to)
        .execution_options(synchronize_session=False)
    )
    session.refresh(voucher)
    return rowcount(result) == 1


def check_redeemable(voucher: Voucher, *, order_cents: int) -> None:
    """Raise unless ``voucher`` may be spent now on an order of ``order_cents``: issued,
    within its validity, at or above its threshold."""
    instant = now()
    if not (voucher.valid_from <= instant < voucher.valid_until):
        raise Conflict(BenefitsError.VOUCHER_NOT_VALID, "the voucher is not valid now")
    if order_cents < voucher.threshold_cents:
        raise Conflict(
            BenefitsError.BELOW_THRESHOLD,
            f"the order must reach {voucher.threshold_cents} cents",
            details={"threshold_cents": voucher.threshold_cents},
        )
    if voucher.status != VoucherStatus.ISSUED:
        raise Conflict(BenefitsError.VOUCHER_NOT_REDEEMABLE, f"the voucher is {voucher.status}")


def redeem_voucher(
    session: Session, *, voucher: Voucher, order_cents: int, source: str, details: dict[str, Any]
) -> Voucher:
    """Spend ``voucher`` on an order of ``order_cents`` (:func:`check_redeemable`), exactly
    once however many requests race for it; a ledger row records it with ``details`` (who
    took it)."""
    check_redeemable(voucher, order_cents=order_cents)
    if not _move_voucher(session, voucher, VoucherStatus.REDEEMED):
        raise Conflict(BenefitsError.VOUCHER_NOT_REDEEMABLE, f"the voucher is {voucher.status}")
    _ledger(
        session,
        [
            _voucher_out(
                voucher,
                LedgerAction.REDEEM,
                source,
                details={"order_cents": order_cents, **details},
            )
        ],
    )
    hooks.emit(
        session,
        org_id=session.scalars(
            select(Membership.org_id).where(Membership.id == voucher.membership_id)
        ).one(),
        event=hooks.OrgEvent.VOUCHER_USED,
        payload={
            "membership_id": voucher.membership_id,
            "activity_id": voucher.activity_id,
            "voucher_id": voucher.id,
            "name": voucher.name,
            "value_cents": voucher.value_cents,
        },
    )
    return voucher


def reinstate_voucher(
    session: Session, *, voucher_id: int, source: str, details: dict[str, Any]
) -> bool:
    """A redeemed voucher back in the wallet (the order it paid for was cancelled or
    refunded), with its ledger row; False if it was not redeemed. A voucher past its
    validity comes back too, and the sweep expires it."""
    result = session.execute(
        update(Voucher)
        .where(Voucher.id == voucher_id, Voucher.status == VoucherStatus.REDEEMED)
        .values(status=VoucherStatus.ISSUED)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return False
    voucher = session.get(Voucher, voucher_id)
    assert voucher is not None
    session.refresh(voucher)
    entry = _voucher_out(voucher, LedgerAction.ISSUE, source, details)
    _ledger(session, [{**entry, "amount": voucher.value_cents}])
    return True


def revoke_voucher(session: Session, *, actor: Actor, voucher: Voucher, reason: str) -> Voucher:
    if not _move_voucher(session, voucher, VoucherStatus.REVOKED):
        raise Conflict(BenefitsError.VOUCHER_NOT_REDEEMABLE, f"the voucher is {voucher.status}")
    _ledger(
        session,
        [_voucher_out(voucher, LedgerAction.REVOKE, "operator", details={"reason": reason})],
    )
    audit.record(
        session,
        actor=actor,
        action="benefits.revoke_voucher",
        subject_type="voucher",
        subject_id=voucher.id,
        reason=reason,
    )
    return voucher


def expire_vouchers(session: Session) -> int:
    """Mark every voucher past its validity expired, with a ledger row each."""
    due = list(
        session.scalars(
            select(Voucher).where(
                Voucher.status == VoucherStatus.ISSUED, Voucher.valid_until <= now()
            )
        )
    )
    count = 0
    for voucher in due:
        if _move_voucher(session, voucher, VoucherStatus.EXPIRED):
            _ledger(session, [_voucher_out(voucher, LedgerAction.EXPIRE, "system")])
            count += 1
    return count


def give_address(
    session: Session, *, membership_id: int, prize_id: int, name: str, phone: str, address: str
) -> Prize:
    prize = session.get(Prize, prize_id)
    if prize is None or prize.membership_id != membership_id:
        raise NotFound(BenefitsError.PRIZE_NOT_FOUND, f"prize {prize_id} not found")
    instant = now()
    if prize.status not in (PrizeStatus.AWAITING_ADDRESS, PrizeStatus.TO_SHIP):
        raise Conflict(BenefitsError.ADDRESS_CLOSED, f"the prize is {prize.status}")
    if prize.address_deadline is not None and instant > prize.address_deadline:
        raise Conflict(BenefitsError.ADDRESS_CLOSED, "the deadline for the address has passed")
    prize.address_enc = seal_address(name=name, phone=phone, address=address)
    prize.address_given_at = instant
    prize.status = PrizeStatus.TO_SHIP
    return prize


@dataclass(frozen=True)
class Wallet:
    points: int
    vouchers: list[Voucher]
    prizes: list[Prize]

    def merchant_ids(self) -> set[int]:
        """Every merchant a voucher of the wallet names (to look their names up at once)."""
        return {m for v in self.vouchers for m in v.merchant_ids or ()}


def wallet(session: Session, *, membership_id: int) -> Wallet:
    points = session.scalar(
        select(PointsAccount.balance).where(PointsAccount.membership_id == membership_id)
    )
    vouchers = session.scalars(
        select(Voucher).where(Voucher.membership_id == membership_id).order_by(Voucher.id.desc())
    )
    prizes = session.scalars(
        select(Prize).where(Prize.membership_id == membership_id).order_by(Prize.id.desc())
    )
    return Wallet(points=points or 0, vouchers=list(vouchers), prizes=list(prizes))


def member_ledger(
    session: Session, *, membership_id: int, before_id: int | None = None, limit: int = 50
) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).where(LedgerEntry.membership_id == membership_id)
    if before_id is not None:
        stmt = stmt.where(LedgerEntry.id < before_id)
    return list(session.scalars(stmt.order_by(LedgerEntry.id.desc()).limit(min(limit, 200))))


# -- members' own actions, as the hot writer runs them (JSON answers, idempotent) ----------


def give_address_once(
    session: Session,
    *,
    membership_id: int,
    prize_id: int,
    name: str,
    phone: str,
    address: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Say where to send a physical prize; a retry with the same key gets the first answer."""

    def act() -> dict[str, Any]:
        prize = give_address(
            session,
            membership_id=membership_id,
            prize_id=prize_id,
            name=name,
            phone=phone,
            address=address,
        )
        return PrizeRead.model_validate(prize).model_dump(mode="json")

    return idempotency.run_once(
        session,
        membership_id=membership_id,
        key=idempotency_key,
        operation=f"benefits.claim:{prize_id}",
        action=act,
    )

"""Checkout: a member's order priced from our records, a hot operation of the writer.

Each order checks every item is on the shelf for the member and from one seller, takes
the stock, the subsidy of the mall sale named (:mod:`.holds`) and the voucher, and is
written ``unpaid`` with its lines, due to be closed after ``mall_unpaid_timeout_s``. A
refusal anywhere leaves nothing taken. The client sends SKUs and quantities only: every
amount is computed here, ``total = goods - subsidy - voucher``.

The hot writer hands every checkout waiting for it to :func:`checkout_many`, which reads
the SKUs and products, openids, sales, caps, budgets and vouchers once for the batch,
works each order out in batch order against what is left (a member's second checkout in
a batch comes after everyone's first), and then writes them all with a statement per
step: the caps in member order, one ledger insert, the orders and their lines as
multi-row INSERTs, then the stock (one conditional UPDATE per SKU for the batch's units)
and the budget (one ``charge_budget`` per sale). Each order gets the outcome it would have
got checked out alone, one after another (``tests/mall/test_checkout_batch.py``). On
PostgreSQL a writer's first try reads stock and budget unlocked and takes them last, as
draws do (see :mod:`gonghui.activities.lottery.draw`): if another writer took them
meanwhile, the batch runs again with them locked (``hotwrite.RunAgain``). A member's cap
that another writer used meanwhile fails the batch, whose checkouts then run alone and
that one is refused with ``mall.try_again``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, insert, select
from sqlalchemy.orm import Session

from gonghui import hotwrite, idempotency
from gonghui.accounts.identities import wechat_openids
from gonghui.accounts.principal import MemberInfo
from gonghui.activities import counters
from gonghui.activities.models import Activity, ActivityKind
from gonghui.activities.participation import chain_ids, live_activities
from gonghui.activities.schemas import MallRules
from gonghui.benefits import service as benefits
from gonghui.benefits.addresses import masked_address, seal_address
from gonghui.benefits.models import LedgerAction, LedgerKind, Voucher
from gonghui.clock import local_day, now
from gonghui.db import is_sqlite
from gonghui.errors import Conflict, DomainError, InvalidInput
from gonghui.mall import cart, holds, orders
from gonghui.mall.errors import MallError
from gonghui.mall.models import Order, OrderLine, OrderState, Product, Sku
from gonghui.settings import get_settings

OPERATION = "mall.checkout"
SOURCE = "mall.checkout"


def payer_appid() -> str:
    """The WeChat app members pay in."""
    settings = get_settings()
    return settings.mall_appid or settings.wechat_mp_appid


class TakenMeanwhile(Exception):
    """Another writer used what a batch counted on (PostgreSQL): a fault of the batch,
    whose checkouts then run alone."""


@dataclass(frozen=True)
class _Call:
    """One member's checkout as the writer got it (:func:`checkout`'s arguments)."""

    index: int
    member: MemberInfo
    items: list[dict[str, int]] | None
    activity_id: int | None
    voucher_id: int | None
    address: dict[str, str]
    idempotency_key: str | None

    @property
    def member_id(self) -> int:
        return self.member.membership_id

    @property
    def key(self) -> str | None:
        return self.idempotency_key


@dataclass(frozen=True, slots=True)
class _Item:
    """A SKU and its product as an order line copies them."""

    sku_id: int
    price_cents: int
    sku_name: str
    product_id: int
    product_name: str
    origin_region: str
    org_id: int
    on_shelf: bool
    stock: int  # as read: the batch counts down its own copy


@dataclass
class _Sale:
    """A mall sale named in the batch: its rules, what is left of its budget, and each
    member's answer (the sale, or why they may not use it) and cap left this month."""

    activity: Activity | None
    rules: MallRules | None
    budget: benefits.BudgetLeft | None
    live: dict[int, Activity | DomainError]
    cap_left: dict[int, int] = field(default_factory=dict)


@dataclass
class _Order:
    """An order that goes ahead, as it is worked out."""

    call: _Call
    wanted: dict[int, int]
    seller: int
    openid: str
    goods: int
    out_trade_no: str = field(default_factory=lambda: f"GHM{secrets.token_hex(12)}")
    subsidy: int = 0
    # The sale's cap and the month it counts in (with a subsidy).
    cap: int = 0
    month: str | None = None
    voucher: Voucher | None = None
    voucher_cents: int = 0
    order_id: int = 0
    # The SKUs read for the batch, and the order's row as written.
    items: dict[int, _Item] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict)


Outcome = dict[str, Any] | DomainError


def checkout_many(session: Session, calls: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    """Check out each call (keyword arguments of :func:`checkout`); each call's order, or
    the DomainError that refuses it, in the same order."""
    outcomes: list[Outcome | None] = [None] * len(calls)
    pending = [_Call(index=i, **call) for i, call in enumerate(calls)]
    # On PostgreSQL a first try reads stock and budget unlocked (see the module).
    lock = not (hotwrite.first_try(session) and not is_sqlite(session))
    for round_ in hotwrite.rounds(pending, lambda call: call.member_id):
        _checkout_round(session, round_, outcomes, lock=lock)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


@hotwrite.batched(checkout_many)
def checkout(
    session: Session,
    *,
    member: MemberInfo,
    items: list[dict[str, int]] | None,
    activity_id: int | None,
    voucher_id: int | None,
    address: dict[str, str],
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Hot operation: the order, or the reason there is none (see the module)."""
    try:
        result: dict[str, Any] = hotwrite.one(
            checkout_many,
            session,
            member=member,
            items=items,
            activity_id=activity_id,
            voucher_id=voucher_id,
            address=address,
            idempotency_key=idempotency_key,
        )
    except TakenMeanwhile:
        # Another writer used the subsidy meanwhile (PostgreSQL); the savepoint undoes ours.
        raise Conflict(
            MallError.TRY_AGAIN, "the subsidy changed while you checked out; retry"
        ) from None
    return result


def _checkout_round(
    session: Session, calls: list[_Call], outcomes: list[Outcome | None], *, lock: bool
) -> None:
    """One round of checkouts (each member once); fills in ``outcomes``."""

    def work(going: list[_Call]) -> None:
        wanted: dict[int, dict[int, int]] = {}
        for call in going:
            try:
                wanted[call.index] = _wanted(session, call)
            except DomainError as exc:
                outcomes[call.index] = exc
        going = [call for call in going if call.index in wanted]
        orders = _work_out(session, going, wanted, outcomes, lock=lock)
        _write(session, orders, lock=lock)
        for order in orders:
            outcomes[order.call.index] = _view(order)

    idempotency.keyed_round(session, calls, outcomes, operation=lambda _: OPERATION, work=work)


def _wanted(session: Session, call: _Call) -> dict[int, int]:
    """SKU id → quantity: the items named, else the whole cart."""
    pairs = (
        [(int(i["sku_id"]), int(i["quantity"])) for i in call.items]
        if call.items is not None
        else cart.items(session, membership_id=call.member_id)
    )
    wanted: dict[int, int] = {}
    for sku_id, quantity in pairs:
        wanted[sku_id] = wanted.get(sku_id, 0) + quantity
    if not wanted:
        raise InvalidInput(MallError.EMPTY_ORDER, "there is nothing to check out")
    return wanted


@cache
def _items(*, lock: bool) -> Select[int, int, str, int, str, str, int, bool, int]:
    read = (
        select(
            Sku.id,
            Sku.price_cents,
            Sku.name,
            Product.id,
            Product.name,
            Product.origin_region,
            Product.org_id,
            Product.on_shelf,
            Sku.stock,
        )
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.id.in_(bindparam("ids", expanding=True)))
        .order_by(Sku.id)
    )
    return read.with_for_update(of=Sku) if lock else read


def _work_out(
    session: Session,
    calls: list[_Call],
    wanted: dict[int, dict[int, int]],
    outcomes: list[Outcome | None],
    *,
    lock: bool,
) -> list[_Order]:
    """Each call's order in batch order against what is left (stock, budget, vouchers),
    read once for all of them; the refused get their reasons in ``outcomes``."""
    if not calls:
        return []
    sku_ids = sorted({sku_id for w in wanted.values() for sku_id in w})
    items: dict[int, _Item] = {}
    stock: dict[int, int] = {}
    for row in session.connection().execute(_items(lock=lock), {"ids": sku_ids}):
        item = _Item(*row)
        items[item.sku_id] = item
        stock[item.sku_id] = item.stock
    appid = payer_appid()
    openids = wechat_openids(session, membership_ids=[c.member_id for c in calls], appid=appid)
    sales = _sales(session, calls, lock=lock)
    month = local_day().strftime("%Y-%m")
    voucher_ids = [call.voucher_id for call in calls if call.voucher_id is not None]
    if voucher_ids:
        # Loaded once (member_voucher then finds them in the session), afresh: a copy the
        # session holds from a batch rolled back may say a voucher is spent that is not.
        session.scalars(
            select(Voucher)
            .where(Voucher.id.in_(voucher_ids))
            .execution_options(populate_existing=True)
        ).all()
    orders = []
    for call in calls:
        try:
            order = _work_out_one(
                session, call, wanted[call.index], items, stock, openids.get(call.member_id)
            )
            if call.activity_id is not None:
                _subsidise(order, sales[call.activity_id], month)
            if call.voucher_id is not None:
                _voucher(session, order, call.voucher_id)
        except DomainError as exc:
            outcomes[call.index] = exc
            continue
        # It goes ahead: what it takes is no longer left for the calls after it.
        for sku_id, quantity in order.wanted.items():
            stock[sku_id] -= quantity
        if order.subsidy:
            assert call.activity_id is not None
            budget = sales[call.activity_id].budget
            assert budget is not None
            budget.spend(order.subsidy, 0)
        orders.append(order)
    return orders


def _work_out_one(
    session: Session,
    call: _Call,
    wanted: dict[int, int],
    items: dict[int, _Item],
    stock: dict[int, int],
    openid: str | None,
) -> _Order:
    """The order's goods from one seller, on the shelf for the member, in stock, paid in
    WeChat; raises why not."""
    visible = set(chain_ids(call.member.org_path))
    for sku_id in wanted:
        item = items.get(sku_id)
        if item is None or item.org_id not in visible:
            raise Conflict(MallError.OFF_SHELF, "an item is not sold here", {"sku_id": sku_id})
        if not item.on_shelf:
            raise Conflict(MallError.OFF_SHELF, "an item is off the shelf", {"sku_id": sku_id})
    sellers = {items[sku_id].org_id for sku_id in wanted}
    if len(sellers) != 1:
        raise InvalidInput(
            MallError.ONE_SELLER, "an order holds the products of one union; check out apart"
        )
    if openid is None:
        raise Conflict(
            MallError.WECHAT_NOT_LINKED,
            "you pay in WeChat: sign in once through the union's WeChat mini program to "
            "link your WeChat, then check out",
            {"appid": payer_appid()},
        )
    for sku_id, quantity in sorted(wanted.items()):
        if stock[sku_id] < quantity:
            raise Conflict(
                MallError.OUT_OF_STOCK, "not enough left of one of the items", {"sku_id": sku_id}
            )
    goods = sum(items[sku_id].price_cents * quantity for sku_id, quantity in wanted.items())
    return _Order(call, wanted, seller=sellers.pop(), openid=openid, goods=goods, items=items)


def _sales(session: Session, calls: list[_Call], *, lock: bool) -> dict[int, _Sale]:
    """Each sale named: read once, with its members' answers and caps."""
    by_sale: dict[int, list[_Call]] = {}
    for call in calls:
        if call.activity_id is not None:
            by_sale.setdefault(call.activity_id, []).append(call)
    sales = {}
    # Sales in id order, so that batches lock their budgets in one order.
    for activity_id, group in sorted(by_sale.items()):
        found = live_activities(
            session,
            members=[call.member for call in group],
            activity_id=activity_id,
            kinds={ActivityKind.MALL},
        )
        live = {call.member_id: answer for call, answer in zip(group, found, strict=True)}
        activity = next((a for a in found if isinstance(a, Activity)), None)
        if activity is None:
            sales[activity_id] = _Sale(None, None, None, live)
            continue
        rules = MallRules.model_validate(activity.config["mall"])
        cap = rules.member_cap_cents_per_month
        scope = holds.subsidy_scope(local_day().strftime("%Y-%m"))
        left = counters.remaining_many(
            session, activity_id=activity_id, members=list(live), scopes={scope: cap}
        )
        sales[activity_id] = _Sale(
            activity,
            rules,
            benefits.budget_left(session, activity_id=activity_id, lock=lock),
            live,
            {member: scopes[scope] for member, scopes in left.items()},
        )
    return sales


def _subsidise(order: _Order, sale: _Sale, month: str) -> None:
    """The sale's share of the order (raises if the member may not use the sale)."""
    answer = sale.live[order.call.member_id]
    if isinstance(answer, DomainError):
        raise answer
    assert sale.rules is not None
    assert sale.budget is not None
    order.subsidy = holds.subsidy_share(
        sale.rules,
        goods_cents=order.goods,
        cap_left_cents=sale.cap_left[order.call.member_id],
        budget_left_cents=sale.budget.cents,
    )
    order.cap = sale.rules.member_cap_cents_per_month
    order.month = month


def _voucher(session: Session, order: _Order, voucher_id: int) -> None:
    """The member's voucher off the order (raises if it cannot be spent on it)."""
    voucher = benefits.member_voucher(session, order.call.member_id, voucher_id)
    order.voucher_cents = holds.voucher_share(
        voucher, goods_cents=order.goods, subsidy_cents=order.subsidy
    )
    benefits.check_redeemable(voucher, order_cents=order.goods)
    order.voucher = voucher


# The new ids are matched to their orders by order number, not by the order of the rows:
# RETURNING in parameter order (``sort_by_parameter_order``) makes SQLAlchemy insert one row
# at a time on SQLite (no sentinel column with the id's SQLite variant type).
_INSERT_ORDERS = insert(Order).returning(Order.out_trade_no, Order.id)
_INSERT_LINES = insert(OrderLine)


def _write(session: Session, orders: list[_Order], *, lock: bool) -> None:
    """Take what the orders hold and write them, with their lines; stock and budget last
    (see the module)."""
    if not orders:
        return
    subsidised = [order for order in orders if order.subsidy]
    by_sale: dict[int, list[_Order]] = {}
    for order in subsidised:
        assert order.call.activity_id is not None
        by_sale.setdefault(order.call.activity_id, []).append(order)
    lost = TakenMeanwhile if lock else hotwrite.RunAgain
    # Caps in member order, a statement per sale (its orders share its rules and month).
    for activity_id, group in sorted(by_sale.items()):
        taken = counters.take_amounts(
            session,
            activity_id=activity_id,
            scope=holds.subsidy_scope(group[0].month or ""),
            granted=group[0].cap,
            amounts={order.call.member_id: order.subsidy for order in group},
        )
        if len(taken) != len(group):
            raise TakenMeanwhile(f"a member's subsidy cap in sale {activity_id} was used meanwhile")
    benefits.record_entries(
        session,
        kind=LedgerKind.SUBSIDY,
        action=LedgerAction.ISSUE,
        source=SOURCE,
        entries=[
            benefits.Entry(
                order.call.member_id,
                order.call.activity_id,
                order.subsidy,
                {"out_trade_no": order.out_trade_no, "month": order.month},
            )
            for order in subsidised
        ],
    )
    for order in orders:
        if order.voucher is not None:
            benefits.redeem_voucher(
                session,
                voucher=order.voucher,
                order_cents=order.goods,
                source=SOURCE,
                details={"out_trade_no": order.out_trade_no, "off_cents": order.voucher_cents},
            )
    _insert(session, orders)
    cart.remove_bought(
        session, [(order.call.member_id, sku_id) for order in orders for sku_id in order.wanted]
    )
    units: dict[int, int] = {}
    for order in orders:
        for sku_id, quantity in order.wanted.items():
            units[sku_id] = units.get(sku_id, 0) + quantity
    if short := holds.take_stock(session, units):
        raise lost(f"the stock of SKU {short[0]} was taken meanwhile")
    for activity_id, group in sorted(by_sale.items()):
        cents = sum(order.subsidy for order in group)
        if not benefits.charge_budget(session, activity_id=activity_id, cents=cents):
            raise lost(f"the budget of sale {activity_id} was spent meanwhile")


def _insert(session: Session, orders: list[_Order]) -> None:
    """The orders, unpaid, and their lines: a multi-row INSERT each."""
    instant = now()
    due = instant + timedelta(seconds=get_settings().mall_unpaid_timeout_s)
    appid = payer_appid()
    rows = [
        {
            "org_id": order.seller,
            "membership_id": order.call.member_id,
            "member_org_id": order.call.member.org_id,
            "activity_id": order.call.activity_id if order.subsidy else None,
            "subsidy_month": order.month if order.subsidy else None,
            "voucher_id": order.call.voucher_id,
            "goods_cents": order.goods,
            "subsidy_cents": order.subsidy,
            "voucher_cents": order.voucher_cents,
            "total_cents": order.goods - order.subsidy - order.voucher_cents,
            "state": OrderState.UNPAID,
            "due_at": due,
            "address_enc": seal_address(**order.call.address),
            "out_trade_no": order.out_trade_no,
            "appid": appid,
            "openid": order.openid,
            "created_at": instant,
        }
        for order in orders
    ]
    connection = session.connection()
    ids: dict[str, int] = dict(connection.execute(_INSERT_ORDERS, rows).all())
    for order, row in zip(orders, rows, strict=True):
        order.order_id = ids[order.out_trade_no]
        order.row = row
    connection.execute(
        _INSERT_LINES,
        [{"order_id": order.order_id, **line} for order in orders for line in _lines(order)],
    )


def _lines(order: _Order) -> list[dict[str, Any]]:
    """The order's lines as bought (and as the answer shows them), in the order named."""
    return [
        {
            "sku_id": sku_id,
            "product_id": order.items[sku_id].product_id,
            "product_name": order.items[sku_id].product_name,
            "sku_name": order.items[sku_id].sku_name,
            "origin_region": order.items[sku_id].origin_region,
            "price_cents": order.items[sku_id].price_cents,
            "quantity": quantity,
            "amount_cents": order.items[sku_id].price_cents * quantity,
        }
        for sku_id, quantity in order.wanted.items()
    ]


def _view(order: _Order) -> dict[str, Any]:
    """The order as :func:`.orders.order_view` shows it, from what was written."""
    row = {"id": order.order_id, **order.row}
    return orders.shaped_view(
        row.get, address=masked_address(order.call.address), lines=_lines(order)
    )

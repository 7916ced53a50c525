"""Checkout: a member's order priced from our records, a hot operation of the writer.

One transaction (a savepoint of the writer's batch) checks every item is on the shelf for
the member and from one seller, takes the stock (:func:`.holds.take_stock`), the subsidy
of the mall sale named (:func:`.holds.take_subsidy`) and the voucher, and writes the
order ``unpaid`` with its lines, due to be closed after ``mall_unpaid_timeout_s``. A
refusal anywhere leaves nothing taken. The client sends SKUs and quantities only: every
amount is computed here, ``total = goods - subsidy - voucher``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import idempotency
from gonghui.accounts.identities import wechat_openid
from gonghui.accounts.principal import MemberInfo
from gonghui.activities.models import ActivityKind
from gonghui.activities.participation import chain_ids, live_activity
from gonghui.benefits import service as benefits
from gonghui.benefits.addresses import seal_address
from gonghui.clock import local_day, now
from gonghui.errors import Conflict, InvalidInput
from gonghui.mall import cart, holds
from gonghui.mall.errors import MallError
from gonghui.mall.models import Order, OrderLine, OrderState, Product, Sku
from gonghui.mall.orders import order_view
from gonghui.settings import get_settings


def payer_appid() -> str:
    """The WeChat app members pay in."""
    settings = get_settings()
    return settings.mall_appid or settings.wechat_mp_appid


def _wanted(
    session: Session, member: MemberInfo, items: list[dict[str, int]] | None
) -> dict[int, int]:
    """SKU id → quantity: the items named, else the whole cart."""
    pairs = (
        [(int(i["sku_id"]), int(i["quantity"])) for i in items]
        if items is not None
        else cart.items(session, membership_id=member.membership_id)
    )
    wanted: dict[int, int] = {}
    for sku_id, quantity in pairs:
        wanted[sku_id] = wanted.get(sku_id, 0) + quantity
    if not wanted:
        raise InvalidInput(MallError.EMPTY_ORDER, "there is nothing to check out")
    return wanted


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

    def act() -> dict[str, Any]:
        wanted = _wanted(session, member, items)
        rows = session.execute(
            select(Sku, Product)
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.id.in_(list(wanted)))
            .order_by(Sku.id)
        ).all()
        found = {sku.id: (sku, product) for sku, product in rows}
        visible = set(chain_ids(member.org_path))
        for sku_id in wanted:
            pair = found.get(sku_id)
            if pair is None or pair[1].org_id not in visible:
                raise Conflict(MallError.OFF_SHELF, "an item is not sold here", {"sku_id": sku_id})
            if not pair[1].on_shelf:
                raise Conflict(MallError.OFF_SHELF, "an item is off the shelf", {"sku_id": sku_id})
        sellers = {product.org_id for _, product in found.values()}
        if len(sellers) != 1:
            raise InvalidInput(
                MallError.ONE_SELLER, "an order holds the products of one union; check out apart"
            )
        appid = payer_appid()
        openid = wechat_openid(session, membership_id=member.membership_id, appid=appid)
        if openid is None:
            raise Conflict(
                MallError.WECHAT_NOT_LINKED,
                "you pay in WeChat: sign in once through the union's WeChat mini program to "
                "link your WeChat, then check out",
                {"appid": appid},
            )
        holds.take_stock(session, list(wanted.items()))
        goods = sum(found[s][0].price_cents * q for s, q in wanted.items())
        out_trade_no = f"GHM{secrets.token_hex(12)}"
        subsidy, month = 0, None
        if activity_id is not None:
            activity = live_activity(
                session, member=member, activity_id=activity_id, kinds={ActivityKind.MALL}
            )
            month = local_day().strftime("%Y-%m")
            subsidy = holds.take_subsidy(
                session,
                member=member,
                activity=activity,
                goods_cents=goods,
                month=month,
                out_trade_no=out_trade_no,
            )
        voucher_cents = 0
        if voucher_id is not None:
            voucher = benefits.member_voucher(
                session, membership_id=member.membership_id, voucher_id=voucher_id
            )
            voucher_cents = holds.voucher_share(voucher, goods_cents=goods, subsidy_cents=subsidy)
            benefits.redeem_voucher(
                session,
                voucher=voucher,
                order_cents=goods,
                source="mall.checkout",
                details={"out_trade_no": out_trade_no, "off_cents": voucher_cents},
            )
        instant = now()
        order = Order(
            org_id=sellers.pop(),
            membership_id=member.membership_id,
            member_org_id=member.org_id,
            activity_id=activity_id if subsidy else None,
            subsidy_month=month if subsidy else None,
            voucher_id=voucher_id,
            goods_cents=goods,
            subsidy_cents=subsidy,
            voucher_cents=voucher_cents,
            total_cents=goods - subsidy - voucher_cents,
            state=OrderState.UNPAID,
            due_at=instant + timedelta(seconds=get_settings().mall_unpaid_timeout_s),
            address_enc=seal_address(**address),
            out_trade_no=out_trade_no,
            appid=appid,
            openid=openid,
            created_at=instant,
        )
        session.add(order)
        session.flush()
        for sku_id, quantity in wanted.items():
            sku, product = found[sku_id]
            session.add(
                OrderLine(
                    order_id=order.id,
                    sku_id=sku.id,
                    product_id=product.id,
                    product_name=product.name,
                    sku_name=sku.name,
                    origin_region=product.origin_region,
                    price_cents=sku.price_cents,
                    quantity=quantity,
                    amount_cents=sku.price_cents * quantity,
                )
            )
        session.flush()
        cart.remove_bought(session, membership_id=member.membership_id, sku_ids=list(wanted))
        return order_view(session, order)

    return idempotency.run_once(
        session,
        membership_id=member.membership_id,
        key=idempotency_key,
        operation="mall.checkout",
        action=act,
    )

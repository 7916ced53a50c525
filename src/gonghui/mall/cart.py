"""Each member's cart, kept on the server: SKUs and quantities, priced when read (the
order is priced again at checkout, from our records)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Delete, bindparam, delete, select
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.db import upsert_insert
from gonghui.errors import NotFound
from gonghui.mall import catalog
from gonghui.mall.errors import MallError
from gonghui.mall.models import CartItem, Product, Sku

MAX_ITEMS = 50


def _visible_sku(session: Session, member: MemberInfo, sku_id: int) -> Sku:
    sku = session.get(Sku, sku_id)
    if sku is None:
        raise NotFound(MallError.SKU_NOT_FOUND, f"SKU {sku_id} not found")
    catalog.shelf_product(session, member=member, product_id=sku.product_id)
    return sku


def set_item(session: Session, *, member: MemberInfo, sku_id: int, quantity: int) -> None:
    """Put ``quantity`` of the SKU in the cart (replacing what was there)."""
    sku = _visible_sku(session, member, sku_id)
    session.execute(
        upsert_insert(session.get_bind().dialect.name)(CartItem)
        .values(membership_id=member.membership_id, sku_id=sku.id, quantity=quantity)
        .on_conflict_do_update(
            index_elements=["membership_id", "sku_id"], set_={"quantity": quantity}
        )
    )


def remove_item(session: Session, *, member: MemberInfo, sku_id: int) -> None:
    session.execute(
        delete(CartItem).where(
            CartItem.membership_id == member.membership_id, CartItem.sku_id == sku_id
        )
    )


@cache
def _remove_bought() -> Delete:
    return delete(CartItem).where(
        CartItem.membership_id == bindparam("m"), CartItem.sku_id == bindparam("s")
    )


def remove_bought(session: Session, bought: Sequence[tuple[int, int]]) -> None:
    """Take each (membership id, SKU id) bought out of its member's cart."""
    if bought:
        session.connection().execute(_remove_bought(), [{"m": m, "s": s} for m, s in bought])


def items(session: Session, *, membership_id: int) -> list[tuple[int, int]]:
    """(sku id, quantity) of each item in the cart."""
    rows = session.execute(
        select(CartItem.sku_id, CartItem.quantity)
        .where(CartItem.membership_id == membership_id)
        .order_by(CartItem.id)
        .limit(MAX_ITEMS)
    )
    return [(sku_id, quantity) for sku_id, quantity in rows]


def read_cart(session: Session, *, member: MemberInfo) -> dict[str, Any]:
    rows = session.execute(
        select(CartItem, Sku, Product)
        .join(Sku, Sku.id == CartItem.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(CartItem.membership_id == member.membership_id)
        .order_by(CartItem.id)
        .limit(MAX_ITEMS)
    )
    lines = [
        {
            "sku_id": sku.id,
            "product_id": product.id,
            "product_name": product.name,
            "sku_name": sku.name,
            "price_cents": sku.price_cents,
            "quantity": item.quantity,
            "amount_cents": sku.price_cents * item.quantity,
            "available": product.on_shelf and sku.stock >= item.quantity,
        }
        for item, sku, product in rows
    ]
    return {"items": lines, "goods_cents": sum(line["amount_cents"] for line in lines)}

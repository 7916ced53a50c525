"""Products of assistance regions and their SKUs, as operators manage them, and the shelf
members browse.

Operators need ``activities.manage`` at the product's org (or above it). A member sees
the products on the shelf of their own union and of every union above it, as with
activities: a product is sold to the members of its org's subtree.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from gonghui.accounts.principal import MemberInfo
from gonghui.activities.participation import chain_ids
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.db import rowcount
from gonghui.errors import Conflict, InvalidInput, NotFound, field_error
from gonghui.images import WEB_MEDIA_TYPES, ImageTooLarge, NotAnImage, web_image_extension
from gonghui.mall.errors import MallError
from gonghui.mall.models import Product, Sku
from gonghui.mall.schemas import ProductCreate, ProductUpdate, SkuCreate, SkuUpdate
from gonghui.orgs.models import Org
from gonghui.storage import get_store
from gonghui.tenancy import Actor, Permission, get_scoped, list_scoped, require_org

MANAGE = Permission.ACTIVITIES_MANAGE
IMAGE_PREFIX = "mall/images/"
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = WEB_MEDIA_TYPES


def _audit(
    session: Session, actor: Actor, action: str, product: Product, **details: object
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"mall.{action}",
        org_id=product.org_id,
        subject_type="product",
        subject_id=product.id,
        details=details or None,
    )


def save_image(*, actor: Actor, data: bytes) -> str:
    """Keep an uploaded product image in the file store; its key. Only JPEG, PNG and WebP
    within the pixel cap and :data:`IMAGE_MAX_BYTES` are kept (callers read one byte
    more than that, so a larger file is refused rather than cut short)."""
    if not actor.is_staff:
        raise NotFound(MallError.IMAGE_NOT_FOUND, "no such image")
    if len(data) > IMAGE_MAX_BYTES:
        raise InvalidInput(
            MallError.BAD_IMAGE, f"a product image is at most {IMAGE_MAX_BYTES} bytes"
        )
    try:
        extension = web_image_extension(data)
    except (NotAnImage, ImageTooLarge) as exc:
        raise InvalidInput(MallError.BAD_IMAGE, str(exc)[:200]) from None
    if extension is None:
        raise InvalidInput(MallError.BAD_IMAGE, "product images are JPEG, PNG or WebP")
    key = f"{IMAGE_PREFIX}{secrets.token_hex(16)}.{extension}"
    get_store().put(key, [data])
    return key


def _check_images(images: Sequence[str]) -> list[str]:
    store = get_store()
    for n, key in enumerate(images):
        name = key.removeprefix(IMAGE_PREFIX)
        if (
            not key.startswith(IMAGE_PREFIX)
            or "/" in name
            or name.rpartition(".")[2] not in IMAGE_TYPES
            or not store.exists(key)
        ):
            raise InvalidInput(
                MallError.IMAGE_NOT_FOUND,
                "an image is not one uploaded to the mall",
                [field_error(f"images.{n}", MallError.IMAGE_NOT_FOUND, "not an uploaded image")],
            )
    return list(images)


def create_product(session: Session, *, actor: Actor, data: ProductCreate) -> Product:
    org = require_org(session, actor, MANAGE, data.org_id)
    product = Product(
        org_id=org.id,
        name=data.name,
        description=data.description,
        origin_region=data.origin_region,
        images=_check_images(data.images),
        on_shelf=data.on_shelf,
    )
    session.add(product)
    session.flush()
    for position, sku in enumerate(data.skus):
        _add_sku(session, product, sku, position)
    _audit(session, actor, "create_product", product, name=product.name)
    return product


def _add_sku(session: Session, product: Product, data: SkuCreate, position: int) -> Sku:
    sku = Sku(
        product_id=product.id,
        position=position,
        name=data.name,
        price_cents=data.price_cents,
        stock=data.stock,
        sold=0,
    )
    session.add(sku)
    session.flush()
    return sku


def get_product(session: Session, *, actor: Actor, product_id: int) -> Product:
    return get_scoped(session, Product, product_id, actor, MANAGE)


def list_products(
    session: Session,
    *,
    actor: Actor,
    org_id: int | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[Product]:
    return list_scoped(session, Product, actor, MANAGE, org_id=org_id, before=before, limit=limit)


def update_product(
    session: Session, *, actor: Actor, product_id: int, data: ProductUpdate
) -> Product:
    product = get_product(session, actor=actor, product_id=product_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "images" in changes:
        changes["images"] = _check_images(changes["images"])
    for name, value in changes.items():
        setattr(product, name, value)
    product.updated_at = now()
    _audit(session, actor, "update_product", product, fields=sorted(changes))
    return product


def add_sku(session: Session, *, actor: Actor, product_id: int, data: SkuCreate) -> Sku:
    product = get_product(session, actor=actor, product_id=product_id)
    count = session.scalar(select(func.count()).where(Sku.product_id == product.id)) or 0
    sku = _add_sku(session, product, data, count)
    _audit(session, actor, "add_sku", product, sku_id=sku.id)
    return sku


def update_sku(session: Session, *, actor: Actor, sku_id: int, data: SkuUpdate) -> Sku:
    sku = session.get(Sku, sku_id)
    product = None if sku is None else session.get(Product, sku.product_id)
    if sku is None or product is None or not actor.can(MANAGE, _org_path(session, product)):
        raise NotFound(MallError.SKU_NOT_FOUND, f"SKU {sku_id} not found")
    if data.name is not None:
        sku.name = data.name
    if data.price_cents is not None:
        sku.price_cents = data.price_cents
    if data.add_stock:
        # Relative, and never below zero, so that a checkout taking stock meanwhile is
        # neither undone nor oversold.
        moved = session.execute(
            update(Sku)
            .where(Sku.id == sku.id, Sku.stock + data.add_stock >= 0)
            .values(stock=Sku.stock + data.add_stock)
            .execution_options(synchronize_session=False)
        )
        if rowcount(moved) != 1:
            raise Conflict(MallError.OUT_OF_STOCK, "that would take the stock below zero")
        session.refresh(sku)
    _audit(session, actor, "update_sku", product, sku_id=sku.id, add_stock=data.add_stock)
    return sku


def _org_path(session: Session, product: Product) -> str:
    org = session.get(Org, product.org_id)
    return org.path if org is not None else "/0/"


def skus_of(session: Session, product_ids: Sequence[int]) -> dict[int, list[Sku]]:
    found: dict[int, list[Sku]] = {pid: [] for pid in product_ids}
    if product_ids:
        rows = session.scalars(
            select(Sku).where(Sku.product_id.in_(product_ids)).order_by(Sku.position, Sku.id)
        )
        for sku in rows:
            found[sku.product_id].append(sku)
    return found


# -- the members' shelf -----------------------------------------------------------------------


def _on_shelf_for(member: MemberInfo) -> ColumnElement[bool]:
    return (Product.on_shelf.is_(True)) & Product.org_id.in_(chain_ids(member.org_path))


def shelf(
    session: Session, *, member: MemberInfo, before_id: int | None = None, limit: int = 20
) -> list[Product]:
    """On-shelf products sold to the member's union, newest first."""
    stmt = select(Product).where(_on_shelf_for(member))
    if before_id is not None:
        stmt = stmt.where(Product.id < before_id)
    return list(session.scalars(stmt.order_by(Product.id.desc()).limit(min(max(limit, 1), 50))))


def shelf_product(session: Session, *, member: MemberInfo, product_id: int) -> Product:
    product = session.scalar(select(Product).where(Product.id == product_id, _on_shelf_for(member)))
    if product is None:
        raise NotFound(MallError.PRODUCT_NOT_FOUND, f"product {product_id} not found")
    return product


def image_url(key: str) -> str:
    """Where browsers fetch a product image (public, as the products are)."""
    return f"/api/v1/mall/images/{key.removeprefix(IMAGE_PREFIX)}"


def image_exists(key: str) -> bool:
    return key.startswith(IMAGE_PREFIX) and get_store().exists(key)

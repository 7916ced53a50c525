"""HTTP: operators manage products, ship and refund orders and export the sales report;
members browse the shelf, keep a cart, check out, pay, cancel, confirm receipt and ask
for refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Response, UploadFile, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gonghui import hotwrite, risk, xlsx
from gonghui.bodylimit import MULTIPART_FRAMING, max_body
from gonghui.deps import (
    CurrentMember,
    CurrentStaff,
    MemberAction,
    SessionDep,
    WriteSessionDep,
)
from gonghui.errors import NotFound
from gonghui.mall import (
    cart,
    catalog,
    checkout,
    fulfilment,
    orders,
    payment,
    refund_failures,
    refunds,
    reports,
)
from gonghui.mall.errors import MallError
from gonghui.mall.models import OrderState, Product
from gonghui.mall.schemas import (
    AbnormalRefundRequest,
    CartItemIn,
    CartRead,
    CheckoutRequest,
    ImageRead,
    OrderRead,
    PayParams,
    ProductCreate,
    ProductRead,
    ProductUpdate,
    RefundRequest,
    ShipRequest,
    SkuCreate,
    SkuRead,
    SkuUpdate,
)
from gonghui.storage import download_response
from gonghui.types import Count, Id

router = APIRouter(prefix="/api/v1", tags=["mall"])


def _products(session: Session, products: list[Product]) -> list[ProductRead]:
    skus = catalog.skus_of(session, [p.id for p in products])
    return [
        ProductRead(
            id=p.id,
            org_id=p.org_id,
            name=p.name,
            description=p.description,
            origin_region=p.origin_region,
            images=list(p.images),
            image_urls=[catalog.image_url(key) for key in p.images],
            on_shelf=p.on_shelf,
            skus=[SkuRead.model_validate(s) for s in skus[p.id]],
            created_at=p.created_at,
            updated_at=p.updated_at,
        )
        for p in products
    ]


# -- operators ---------------------------------------------------------------------------------


@router.post("/mall/images", status_code=status.HTTP_201_CREATED)
@max_body(catalog.IMAGE_MAX_BYTES + MULTIPART_FRAMING)
def upload_image(file: Annotated[UploadFile, File()], staff: CurrentStaff) -> ImageRead:
    """A product image (JPEG, PNG or WebP); name its key in a product's ``images``."""
    key = catalog.save_image(actor=staff, data=file.file.read(catalog.IMAGE_MAX_BYTES + 1))
    return ImageRead(key=key, url=catalog.image_url(key))


@router.get("/mall/images/{name}", response_class=Response)
def get_image(name: str) -> Response:
    """A product image (public, as the products are)."""
    key = f"{catalog.IMAGE_PREFIX}{name}"
    extension = name.rpartition(".")[2]
    if "/" in name or extension not in catalog.IMAGE_TYPES or not catalog.image_exists(key):
        raise NotFound(MallError.IMAGE_NOT_FOUND, "no such image")
    return download_response(
        key,
        filename=name,
        content_type=catalog.IMAGE_TYPES[extension],
        cache_control="public, max-age=86400",
    )


@router.post("/mall/products", status_code=status.HTTP_201_CREATED)
def create_product(body: ProductCreate, staff: CurrentStaff, session: SessionDep) -> ProductRead:
    product = catalog.create_product(session, actor=staff, data=body)
    return _products(session, [product])[0]


@router.get("/mall/products")
def list_products(
    staff: CurrentStaff, session: SessionDep, org_id: Id | None = None
) -> list[ProductRead]:
    return _products(session, catalog.list_products(session, actor=staff, org_id=org_id))


@router.get("/mall/products/{product_id}")
def get_product(product_id: Id, staff: CurrentStaff, session: SessionDep) -> ProductRead:
    product = catalog.get_product(session, actor=staff, product_id=product_id)
    return _products(session, [product])[0]


@router.patch("/mall/products/{product_id}")
def update_product(
    product_id: Id, body: ProductUpdate, staff: CurrentStaff, session: SessionDep
) -> ProductRead:
    product = catalog.update_product(session, actor=staff, product_id=product_id, data=body)
    return _products(session, [product])[0]


@router.post("/mall/products/{product_id}/skus", status_code=status.HTTP_201_CREATED)
def add_sku(product_id: Id, body: SkuCreate, staff: CurrentStaff, session: SessionDep) -> SkuRead:
    sku = catalog.add_sku(session, actor=staff, product_id=product_id, data=body)
    return SkuRead.model_validate(sku)


@router.patch("/mall/skus/{sku_id}")
def update_sku(sku_id: Id, body: SkuUpdate, staff: CurrentStaff, session: SessionDep) -> SkuRead:
    return SkuRead.model_validate(
        catalog.update_sku(session, actor=staff, sku_id=sku_id, data=body)
    )


@router.get("/mall/orders", response_model=list[OrderRead])
def list_orders(
    staff: CurrentStaff,
    session: SessionDep,
    state: OrderState | None = None,
    cursor: Id | None = None,
    limit: Count = 50,
) -> Any:
    found = orders.list_orders(session, actor=staff, state=state, before_id=cursor, limit=limit)
    return [orders.order_view(session, order, staff=True) for order in found]


@router.get("/mall/orders/{order_id}", response_model=OrderRead)
def get_order(
    order_id: Id, staff: CurrentStaff, session: WriteSessionDep, reveal: bool = False
) -> Any:
    """One order; ``reveal=true`` shows the full address to ship it (needs ``pii.unmask``;
    audited)."""
    order = orders.get_order(session, actor=staff, order_id=order_id)
    if reveal:
        orders.reveal_address(session, actor=staff, order=order)
    return orders.order_view(session, order, reveal=reveal, staff=True)


@router.post("/mall/orders/{order_id}/ship", response_model=OrderRead)
def ship(order_id: Id, body: ShipRequest, staff: CurrentStaff, session: SessionDep) -> Any:
    order = fulfilment.ship(
        session,
        actor=staff,
        order_id=order_id,
        courier_company=body.courier_company,
        courier_no=body.courier_no,
    )
    return orders.order_view(session, order, staff=True)


@router.post("/mall/orders/{order_id}/refund/approve", response_model=OrderRead)
def approve_refund(order_id: Id, staff: CurrentStaff, session: SessionDep) -> Any:
    """Refund the member's payment through WeChat Pay; the order is ``refunded`` once
    WeChat Pay says the money is back."""
    return orders.order_view(
        session, refunds.approve(session, actor=staff, order_id=order_id), staff=True
    )


@router.post("/mall/orders/{order_id}/refund/refuse", response_model=OrderRead)
def refuse_refund(order_id: Id, staff: CurrentStaff, session: SessionDep) -> Any:
    return orders.order_view(
        session, refunds.refuse(session, actor=staff, order_id=order_id), staff=True
    )


@router.post("/mall/orders/{order_id}/refund/retry", response_model=OrderRead)
def retry_refund(order_id: Id, staff: CurrentStaff, session: SessionDep) -> Any:
    """Send a ``refund_failed`` refund again: refused or closed as a new attempt (a new
    ``out_refund_no``), unanswered under the same number. An abnormal refund is not
    retried (409 ``mall.refund_abnormal``): apply it to a bank card."""
    return orders.order_view(
        session, refund_failures.retry(session, actor=staff, order_id=order_id), staff=True
    )


@router.post("/mall/orders/{order_id}/refund/abnormal", response_model=OrderRead)
async def apply_abnormal_refund(
    order_id: Id, body: AbnormalRefundRequest, staff: CurrentStaff
) -> Any:
    """Have WeChat Pay pay an abnormal refund to the member's debit card or to the
    seller's bank account; the order is ``refunding`` again until WeChat Pay says."""
    card = None
    if body.bank_type and body.bank_account and body.real_name:
        card = refund_failures.BankCard(body.bank_type, body.bank_account, body.real_name)
    return await run_in_threadpool(
        refund_failures.apply_abnormal, actor=staff, order_id=order_id, kind=body.type, card=card
    )


@router.get("/mall/reports/sales.xlsx", response_class=Response)
def sales_report(
    staff: CurrentStaff,
    session: SessionDep,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Response:
    """Sales by assistance region and by union (paid, not refunded), for paid times in
    ``[start, end)``."""
    return xlsx.attachment(
        reports.sales_xlsx(session, actor=staff, start=start, end=end), "mall-sales.xlsx"
    )


# -- members -----------------------------------------------------------------------------------


@router.get("/mall/shelf")
def shelf(
    member: CurrentMember, session: SessionDep, cursor: Id | None = None, limit: Count = 20
) -> list[ProductRead]:
    """On-shelf products sold to the member's union, newest first."""
    found = catalog.shelf(session, member=member, before_id=cursor, limit=limit)
    return _products(session, found)


@router.get("/mall/shelf/{product_id}")
def shelf_product(product_id: Id, member: CurrentMember, session: SessionDep) -> ProductRead:
    product = catalog.shelf_product(session, member=member, product_id=product_id)
    return _products(session, [product])[0]


@router.get("/me/mall/cart", response_model=CartRead)
def get_cart(member: CurrentMember, session: SessionDep) -> Any:
    return cart.read_cart(session, member=member)


@router.put("/me/mall/cart/items", response_model=CartRead)
def put_cart_item(body: CartItemIn, member: CurrentMember, session: SessionDep) -> Any:
    cart.set_item(session, member=member, sku_id=body.sku_id, quantity=body.quantity)
    return cart.read_cart(session, member=member)


@router.delete("/me/mall/cart/items/{sku_id}", response_model=CartRead)
def delete_cart_item(sku_id: Id, member: CurrentMember, session: SessionDep) -> Any:
    cart.remove_item(session, member=member, sku_id=sku_id)
    return cart.read_cart(session, member=member)


@router.post("/me/mall/orders", response_model=OrderRead, status_code=status.HTTP_201_CREATED)
async def place_order(body: CheckoutRequest, caller: MemberAction) -> Any:
    """Check out: the order, unpaid, priced from our records (then ``/payment``). Risk
    control may ask for a challenge first."""
    member = caller.member
    await risk.check_async(risk.Action.CHECKOUT, member, caller.risk, activity_id=body.activity_id)
    return await hotwrite.run_async(
        checkout.checkout,
        member=member,
        items=None if body.items is None else [i.model_dump() for i in body.items],
        activity_id=body.activity_id,
        voucher_id=body.voucher_id,
        address=body.address.model_dump(),
        idempotency_key=caller.idempotency_key,
    )


@router.get("/me/mall/orders", response_model=list[OrderRead])
def my_orders(
    member: CurrentMember, session: SessionDep, cursor: Id | None = None, limit: Count = 20
) -> Any:
    found = orders.member_orders(
        session, membership_id=member.membership_id, before_id=cursor, limit=limit
    )
    return [orders.order_view(session, order) for order in found]


@router.get("/me/mall/orders/{order_id}", response_model=OrderRead)
def my_order(order_id: Id, member: CurrentMember, session: SessionDep) -> Any:
    order = orders.member_order(session, membership_id=member.membership_id, order_id=order_id)
    return orders.order_view(session, order)


@router.post("/me/mall/orders/{order_id}/payment")
async def pay(order_id: Id, member: CurrentMember) -> PayParams:
    """The signed parameters of ``wx.requestPayment`` for the unpaid order."""
    params = await run_in_threadpool(
        payment.prepare_payment, membership_id=member.membership_id, order_id=order_id
    )
    return PayParams.model_validate(params)


@router.post("/me/mall/orders/{order_id}/cancel", response_model=OrderRead)
async def cancel(order_id: Id, member: CurrentMember) -> Any:
    """Cancel an unpaid order: closed at WeChat Pay, its stock, subsidy and voucher given
    back. One paid meanwhile stays paid (409)."""
    return await run_in_threadpool(
        payment.cancel, membership_id=member.membership_id, order_id=order_id
    )


@router.post("/me/mall/orders/{order_id}/receipt", response_model=OrderRead)
def confirm_receipt(order_id: Id, member: CurrentMember, session: SessionDep) -> Any:
    order = fulfilment.confirm_receipt(
        session, membership_id=member.membership_id, order_id=order_id
    )
    return orders.order_view(session, order)


@router.post("/me/mall/orders/{order_id}/refund", response_model=OrderRead)
def request_refund(
    order_id: Id, body: RefundRequest, member: CurrentMember, session: SessionDep
) -> Any:
    order = refunds.request_refund(
        session, membership_id=member.membership_id, order_id=order_id, reason=body.reason
    )
    return orders.order_view(session, order)

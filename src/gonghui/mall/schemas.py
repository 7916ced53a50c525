"""API shapes of the mall."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gonghui.benefits.schemas import AddressRequest
from gonghui.mall.models import AbnormalRefund, OrderState, RefundFailure
from gonghui.types import Amount, Count, Id

Price = Amount


# A product's images at most.
MAX_IMAGES = 9


class SkuCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    price_cents: Price = Field(ge=1)
    stock: Count = Field(default=0, le=10_000_000)


class SkuUpdate(BaseModel):
    """Only the fields sent change. Stock moves by ``add_stock`` (negative takes some
    away, never below zero), not by a number that a checkout could have overtaken."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    price_cents: Price | None = Field(default=None, ge=1)
    add_stock: int = Field(default=0, ge=-10_000_000, le=10_000_000)


class SkuRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    price_cents: int
    stock: int
    sold: int


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_id: Id
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    origin_region: str = Field(min_length=1, max_length=100)
    images: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)
    skus: list[SkuCreate] = Field(min_length=1, max_length=20)
    on_shelf: bool = False


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    origin_region: str | None = Field(default=None, min_length=1, max_length=100)
    images: list[str] | None = Field(default=None, max_length=MAX_IMAGES)
    on_shelf: bool | None = None


class ProductRead(BaseModel):
    id: int
    org_id: int
    name: str
    description: str
    origin_region: str
    images: list[str]  # the file store's keys, as a product is created or updated with them
    image_urls: list[str]  # where a page or an app fetches them (public, as the products are)
    on_shelf: bool
    skus: list[SkuRead]
    created_at: datetime
    updated_at: datetime


class ImageRead(BaseModel):
    key: str
    url: str


class CartItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku_id: Id
    quantity: int = Field(ge=1, le=99)


class CartLine(BaseModel):
    sku_id: int
    product_id: int
    product_name: str
    sku_name: str
    price_cents: int
    quantity: int
    amount_cents: int
    # On the shelf with enough stock right now (checkout decides for good).
    available: bool


class CartRead(BaseModel):
    items: list[CartLine]
    goods_cents: int


class CheckoutRequest(BaseModel):
    """What to buy (default: the whole cart), under which mall sale's subsidy, with which
    of the member's vouchers, delivered where. Prices come from our records only."""

    model_config = ConfigDict(extra="forbid")

    items: list[CartItemIn] | None = Field(default=None, min_length=1, max_length=50)
    activity_id: Id | None = None
    voucher_id: Id | None = None
    address: AddressRequest


class OrderLineRead(BaseModel):
    sku_id: int
    product_id: int
    product_name: str
    sku_name: str
    origin_region: str
    price_cents: int
    quantity: int
    amount_cents: int


class OrderRead(BaseModel):
    id: int
    org_id: int
    member_org_id: int
    state: OrderState
    goods_cents: int
    subsidy_cents: int
    voucher_cents: int
    total_cents: int
    activity_id: int | None
    voucher_id: int | None
    out_trade_no: str
    lines: list[OrderLineRead]
    # Masked unless an operator revealed it (audited).
    address: dict[str, str] | None
    courier_company: str | None
    courier_no: str | None
    refund_reason: str | None
    # ``cancelled``: a payment that came after the order was cancelled, refunded at once.
    refund_from: OrderState | None
    # The refund's attempt and number at WeChat Pay; why the last attempt failed
    # (``refund_failed``) and what WeChat Pay said (operators only); the abnormal refund
    # applied; where the money went once refunded.
    refund_attempt: int
    out_refund_no: str | None
    refund_failure: RefundFailure | None
    refund_error: str | None
    abnormal_refund: AbnormalRefund | None
    refund_account: str | None
    due_at: datetime | None
    created_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    received_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    refunded_at: datetime | None


class PayParams(BaseModel):
    """What the page hands to ``wx.requestPayment`` (WeChat's own field names)."""

    appId: str  # noqa: N815
    timeStamp: str  # noqa: N815
    nonceStr: str  # noqa: N815
    package: str
    signType: str  # noqa: N815
    paySign: str  # noqa: N815


class ShipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    courier_company: str = Field(min_length=1, max_length=50)
    courier_no: str = Field(min_length=4, max_length=50, pattern=r"^[0-9A-Za-z-]+$")


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


class AbnormalRefundRequest(BaseModel):
    """Where an abnormal refund goes: the member's debit card (its bank type as WeChat Pay
    names it, e.g. ``ICBC_DEBIT``, number and holder; sent sealed, never stored) or the
    seller's bank account (the seller then pays the member)."""

    model_config = ConfigDict(extra="forbid")

    type: AbnormalRefund
    bank_type: str | None = Field(default=None, pattern=r"^[A-Z0-9_]{2,16}$")
    bank_account: str | None = Field(default=None, pattern=r"^[0-9]{12,19}$")
    real_name: str | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _card_for_the_member(self) -> AbnormalRefundRequest:
        card = (self.bank_type, self.bank_account, self.real_name)
        if self.type == AbnormalRefund.USER_BANK_CARD and None in card:
            raise ValueError(
                "a refund to the member's card needs bank_type, bank_account, real_name"
            )
        if self.type == AbnormalRefund.MERCHANT_BANK_CARD and card != (None, None, None):
            raise ValueError("a refund to the seller's account takes no card")
        return self

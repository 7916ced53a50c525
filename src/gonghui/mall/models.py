"""The mall's tables: products and SKUs, carts, orders and their lines."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gonghui.clock import now
from gonghui.db import Base, BigId, IdPk


class Product(Base):
    """A product of an assistance region, sold by an org's operators to the members of
    that org's subtree."""

    __tablename__ = "mall_product"

    id: Mapped[IdPk]
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Where it comes from: the assistance region (帮扶地区) the poverty-alleviation report
    # counts its sales under, e.g. "贵州省黔东南州".
    origin_region: Mapped[str] = mapped_column(String(100))
    # Keys of its images in the file store (uploaded through the mall's image endpoint).
    images: Mapped[list[str]] = mapped_column(JSON, default=list)
    on_shelf: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class Sku(Base):
    """One purchasable variant. ``stock`` only falls through one conditional UPDATE
    (``stock >= quantity``), so it never goes below zero: no oversell."""

    __tablename__ = "mall_sku"

    id: Mapped[IdPk]
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("mall_product.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int]
    stock: Mapped[int] = mapped_column(default=0)
    # Units held by orders not cancelled or refunded (checkout adds, a release subtracts).
    sold: Mapped[int] = mapped_column(default=0)


class CartItem(Base):
    __tablename__ = "mall_cart_item"
    __table_args__ = (UniqueConstraint("membership_id", "sku_id"),)

    id: Mapped[IdPk]
    membership_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_membership.id"))
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("mall_sku.id"))
    quantity: Mapped[int]
    added_at: Mapped[datetime] = mapped_column(default=now)


class OrderState(StrEnum):
    UNPAID = "unpaid"
    PAID = "paid"
    SHIPPED = "shipped"
    RECEIVED = "received"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # unpaid, cancelled by the member or closed after the timeout
    REFUND_REQUESTED = "refund_requested"  # the member asked; an operator decides
    REFUNDING = "refunding"  # approved; the refund is at WeChat Pay
    # WeChat Pay refused, closed or could not pay out the refund (``refund_failure``):
    # an operator retries it or, when abnormal, has it paid to a bank card.
    REFUND_FAILED = "refund_failed"
    REFUNDED = "refunded"  # REFUND.SUCCESS: the money is back with the member


class RefundFailure(StrEnum):
    """Why the order's refund attempt did not reach the member."""

    REFUSED = "refused"  # WeChat Pay refused the request (4xx, e.g. NOT_ENOUGH balance)
    CLOSED = "closed"  # REFUND.CLOSED: the refund was closed, the money stays with us
    # REFUND.ABNORMAL: the payer's account could not take it (a card cancelled or frozen);
    # WeChat Pay holds the money until the abnormal refund is applied to a bank card.
    ABNORMAL = "abnormal"
    # WeChat Pay never answered (the task gave up): it may hold the refund already, so a
    # retry sends the same out_refund_no again.
    UNANSWERED = "unanswered"


class AbnormalRefund(StrEnum):
    """Where an abnormal refund is paid (``apply-abnormal-refund``'s ``type``)."""

    USER_BANK_CARD = "USER_BANK_CARD"  # the member's debit card
    MERCHANT_BANK_CARD = "MERCHANT_BANK_CARD"  # the seller's bank account (paid on by hand)


# An order in one of these states holds its stock, subsidy and voucher.
HOLDING = frozenset(
    {
        OrderState.UNPAID,
        OrderState.PAID,
        OrderState.SHIPPED,
        OrderState.RECEIVED,
        OrderState.COMPLETED,
        OrderState.REFUND_REQUESTED,
        OrderState.REFUNDING,
        OrderState.REFUND_FAILED,
    }
)


class Order(Base):
    """A member's order from one seller org. Amounts are integer cents computed here at
    checkout: ``total_cents = goods_cents - subsidy_cents - voucher_cents`` (at least one
    cent: WeChat Pay takes no empty payment). Every move of ``state`` is a conditional
    UPDATE from the state it leaves, so each happens once however many callers race."""

    __tablename__ = "mall_order"
    __table_args__ = (
        Index("ix_mall_order_member", "membership_id", "id"),
        Index("ix_mall_order_state_due", "state", "due_at"),
    )

    id: Mapped[IdPk]
    # The seller: operators of this org's subtree ship and refund it.
    org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"), index=True)
    membership_id: Mapped[int] = mapped_column(BigId, ForeignKey("members_membership.id"))
    # The buyer's union at checkout (the report's "by union").
    member_org_id: Mapped[int] = mapped_column(BigId, ForeignKey("orgs_org.id"))
    # The mall sale whose budget subsidised it, and the month its member cap counted in.
    activity_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("activities_activity.id"))
    subsidy_month: Mapped[str | None] = mapped_column(String(7))
    voucher_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("benefits_voucher.id"))
    goods_cents: Mapped[int]
    subsidy_cents: Mapped[int] = mapped_column(default=0)
    voucher_cents: Mapped[int] = mapped_column(default=0)
    total_cents: Mapped[int]
    state: Mapped[OrderState] = mapped_column(String(20), default=OrderState.UNPAID)
    # The state a refund request came from (an operator's refusal goes back to it);
    # ``cancelled`` for a payment that arrived after the order was cancelled (refunded
    # automatically; its holds were given back at the cancel).
    refund_from: Mapped[OrderState | None] = mapped_column(String(20))
    # When the sweep next looks at it: the unpaid timeout, auto-receipt, completion.
    due_at: Mapped[datetime | None]
    address_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # WeChat Pay: our order number, the payer's app and openid, the prepay id.
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    appid: Mapped[str | None] = mapped_column(String(64))
    openid: Mapped[str | None] = mapped_column(String(128))
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    # The refund's attempt (1 at approval, one more per retry after a refusal or a close)
    # and its number at WeChat Pay (:func:`gonghui.mall.refunds.refund_number`): one
    # attempt is live at a time, and a number is never sent for two amounts.
    refund_attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    out_refund_no: Mapped[str | None] = mapped_column(String(64), unique=True)
    refund_id: Mapped[str | None] = mapped_column(String(32))
    refund_failure: Mapped[RefundFailure | None] = mapped_column(String(20))
    # What WeChat Pay said of the failure (its code and message).
    refund_error: Mapped[str | None] = mapped_column(String(300))
    # The abnormal refund applied to the current attempt, if any.
    abnormal_refund: Mapped[AbnormalRefund | None] = mapped_column(String(20))
    # Where the money went (WeChat Pay's ``user_received_account``, e.g. 支付用户零钱).
    refund_account: Mapped[str | None] = mapped_column(String(64))
    refund_reason: Mapped[str | None] = mapped_column(String(200))
    courier_company: Mapped[str | None] = mapped_column(String(50))
    courier_no: Mapped[str | None] = mapped_column(String(50))
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=now)
    paid_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]


class OrderLine(Base):
    """What was bought, as it was priced at checkout (the product may change later)."""

    __tablename__ = "mall_order_line"

    id: Mapped[IdPk]
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("mall_order.id"), index=True)
    sku_id: Mapped[int] = mapped_column(BigId, ForeignKey("mall_sku.id"))
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("mall_product.id"))
    product_name: Mapped[str] = mapped_column(String(200))
    sku_name: Mapped[str] = mapped_column(String(100))
    origin_region: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int]
    quantity: Mapped[int]
    amount_cents: Mapped[int]

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gonghui.types import Amount, Id


class MerchantCreate(BaseModel):
    org_id: Id
    name: str = Field(min_length=1, max_length=100)
    address: str = Field(default="", max_length=200)


class MerchantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: int
    name: str
    address: str
    active: bool
    created_at: datetime


class CashierCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=10, max_length=256)
    name: str = Field(min_length=1, max_length=50)


class CashierRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    merchant_id: int
    user_id: int
    name: str
    active: bool
    created_at: datetime


class RedeemRequest(BaseModel):
    """What the cashier scanned from the member's phone, and the order it pays towards."""

    code: str = Field(min_length=1, max_length=64)
    order_cents: Amount


class RedemptionRead(BaseModel):
    id: int
    voucher_id: int
    voucher_code: str
    voucher_name: str
    value_cents: int
    order_cents: int
    cashier_name: str
    at: datetime


class VoucherCodeRead(BaseModel):
    """The code the member's app shows as a QR code; ask again before ``expires_at``."""

    code: str
    expires_at: datetime

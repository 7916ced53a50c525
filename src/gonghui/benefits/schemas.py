from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gonghui.benefits.models import LedgerAction, LedgerKind, PrizeStatus, Voucher, VoucherStatus


class VoucherMerchantRead(BaseModel):
    id: int
    name: str


class VoucherRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    activity_id: int | None
    code: str
    name: str
    value_cents: int
    threshold_cents: int
    valid_from: datetime
    valid_until: datetime
    status: VoucherStatus
    # The only merchants that take it; empty: any merchant of the issuing org's subtree.
    merchants: list[VoucherMerchantRead] = Field(default_factory=list)

    @classmethod
    def of(cls, voucher: Voucher, merchant_names: Mapping[int, str]) -> VoucherRead:
        """The voucher with the names of the merchants it names (``merchant_names`` by id)."""
        read = cls.model_validate(voucher)
        read.merchants = [
            VoucherMerchantRead(id=m, name=merchant_names[m])
            for m in voucher.merchant_ids or ()
            if m in merchant_names
        ]
        return read


class PrizeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    activity_id: int | None
    name: str
    status: PrizeStatus
    address_deadline: datetime | None
    address_given_at: datetime | None
    courier_company: str | None = None
    courier_no: str | None = None
    shipped_at: datetime | None = None
    won_at: datetime


class WalletRead(BaseModel):
    points: int
    vouchers: list[VoucherRead]
    prizes: list[PrizeRead]


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    activity_id: int | None
    kind: LedgerKind
    action: LedgerAction
    amount: int
    voucher_id: int | None
    prize_id: int | None
    source: str
    details: dict[str, Any] | None
    at: datetime


class LedgerPage(BaseModel):
    items: list[LedgerEntryRead]
    next_cursor: int | None


class AddressRequest(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    phone: str = Field(pattern=r"^\+?\d{6,15}$")
    address: str = Field(min_length=4, max_length=300)


class FulfilmentLine(BaseModel):
    prize: PrizeRead
    winner: str | None
    address: dict[str, str] | None


class PrizeShipRequest(BaseModel):
    """The courier and tracking number of a shipped prize (as a mall order's)."""

    model_config = ConfigDict(extra="forbid")

    courier_company: str = Field(min_length=1, max_length=50)
    courier_no: str = Field(min_length=4, max_length=50, pattern=r"^[0-9A-Za-z-]+$")

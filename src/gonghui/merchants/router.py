"""Merchants for the staff who manage them; the till for their cashiers; the code a member
shows at the till."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from gonghui import xlsx
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import SessionKind
from gonghui.accounts.principal import Principal
from gonghui.clock import local_day
from gonghui.deps import CurrentMember, CurrentPrincipal, CurrentStaff, SessionDep
from gonghui.errors import PermissionDenied
from gonghui.merchants import redeem, service, statement
from gonghui.merchants.schemas import (
    CashierCreate,
    CashierRead,
    MerchantCreate,
    MerchantRead,
    RedeemRequest,
    RedemptionRead,
    VoucherCodeRead,
)
from gonghui.types import Id

router = APIRouter(prefix="/api/v1", tags=["merchants"])


async def get_till_user(principal: CurrentPrincipal) -> Principal:
    """A cashier works signed in with their password (the staff sign-in), never through a
    member channel (a phone code, WeChat)."""
    if principal.kind != SessionKind.STAFF:
        raise PermissionDenied(AccountsError.NOT_STAFF, "sign in with the cashier's password")
    return principal


TillUser = Annotated[Principal, Depends(get_till_user)]


# -- staff ---------------------------------------------------------------------------------


@router.post("/merchants", status_code=status.HTTP_201_CREATED)
def create_merchant(body: MerchantCreate, staff: CurrentStaff, session: SessionDep) -> MerchantRead:
    merchant = service.create_merchant(
        session, actor=staff, org_id=body.org_id, name=body.name, address=body.address
    )
    return MerchantRead.model_validate(merchant)


@router.get("/merchants")
def list_merchants(staff: CurrentStaff, session: SessionDep) -> list[MerchantRead]:
    return [MerchantRead.model_validate(m) for m in service.list_merchants(session, actor=staff)]


@router.get("/merchants/{merchant_id}")
def get_merchant(merchant_id: Id, staff: CurrentStaff, session: SessionDep) -> MerchantRead:
    merchant = service.get_merchant(session, actor=staff, merchant_id=merchant_id)
    return MerchantRead.model_validate(merchant)


@router.post("/merchants/{merchant_id}/close")
def close_merchant(merchant_id: Id, staff: CurrentStaff, session: SessionDep) -> MerchantRead:
    merchant = service.set_merchant_active(
        session, actor=staff, merchant_id=merchant_id, active=False
    )
    return MerchantRead.model_validate(merchant)


@router.post("/merchants/{merchant_id}/cashiers", status_code=status.HTTP_201_CREATED)
def add_cashier(
    merchant_id: Id, body: CashierCreate, staff: CurrentStaff, session: SessionDep
) -> CashierRead:
    cashier = service.add_cashier(
        session,
        actor=staff,
        merchant_id=merchant_id,
        username=body.username,
        password=body.password,
        name=body.name,
    )
    return CashierRead.model_validate(cashier)


@router.get("/merchants/{merchant_id}/cashiers")
def list_cashiers(merchant_id: Id, staff: CurrentStaff, session: SessionDep) -> list[CashierRead]:
    cashiers = service.list_cashiers(session, actor=staff, merchant_id=merchant_id)
    return [CashierRead.model_validate(c) for c in cashiers]


@router.post("/merchants/{merchant_id}/cashiers/{cashier_id}/disable")
def disable_cashier(
    merchant_id: Id, cashier_id: Id, staff: CurrentStaff, session: SessionDep
) -> CashierRead:
    cashier = service.set_cashier_active(
        session, actor=staff, merchant_id=merchant_id, cashier_id=cashier_id, active=False
    )
    return CashierRead.model_validate(cashier)


Day = Annotated[date | None, Query()]


@router.get("/merchants/{merchant_id}/redemptions")
def merchant_redemptions(
    merchant_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    first: Day = None,
    last: Day = None,
) -> list[RedemptionRead]:
    """The merchant's redemptions on the days ``first`` to ``last`` (default today)."""
    merchant = service.get_merchant(session, actor=staff, merchant_id=merchant_id)
    start, end = statement.period(first, last)
    lines = statement.period_lines(session, merchant_id=merchant.id, first=start, last=end)
    return [RedemptionRead.model_validate(line, from_attributes=True) for line in lines]


@router.get("/merchants/{merchant_id}/statement.xlsx")
def merchant_statement(
    merchant_id: Id,
    staff: CurrentStaff,
    session: SessionDep,
    first: Day = None,
    last: Day = None,
    lang: Annotated[statement.Language, Query()] = "zh",
) -> Response:
    """The settlement statement of the days ``first`` to ``last``, as XLSX."""
    merchant = service.get_merchant(session, actor=staff, merchant_id=merchant_id)
    start, end = statement.period(first, last)
    body = statement.to_xlsx(
        session, merchant=merchant, first=start, last=end, labels=statement.LABELS[lang]
    )
    filename = f"statement-{merchant.id}-{start.isoformat()}-{end.isoformat()}.xlsx"
    return xlsx.attachment(body, filename)


# -- the till ------------------------------------------------------------------------------


@router.post("/cashier/redemptions", status_code=status.HTTP_201_CREATED)
def redeem_at_till(body: RedeemRequest, user: TillUser, session: SessionDep) -> RedemptionRead:
    """Redeem the voucher whose code the member shows, for an order of ``order_cents``."""
    line = redeem.redeem(
        session, user_id=user.user_id, code=body.code, order_cents=body.order_cents
    )
    return RedemptionRead.model_validate(line, from_attributes=True)


@router.get("/cashier/redemptions")
def till_redemptions(user: TillUser, session: SessionDep, day: Day = None) -> list[RedemptionRead]:
    """The merchant's redemptions of ``day`` (default today), newest first."""
    till = service.seat(session, user_id=user.user_id)
    shown = day or local_day()
    lines = statement.period_lines(
        session, merchant_id=till.merchant_id, first=shown, last=shown, newest_first=True
    )
    return [RedemptionRead.model_validate(line, from_attributes=True) for line in lines]


# -- members -------------------------------------------------------------------------------


@router.get("/me/vouchers/{voucher_id}/code")
def voucher_code(voucher_id: Id, member: CurrentMember, session: SessionDep) -> VoucherCodeRead:
    """A code to show at a merchant's till (as a QR code), good for a minute."""
    code = redeem.member_code(session, membership_id=member.membership_id, voucher_id=voucher_id)
    return VoucherCodeRead(code=code.text, expires_at=code.expires_at)

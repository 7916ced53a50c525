"""Merchants and their cashiers, managed by the staff of the merchant's org subtree."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.accounts import service as accounts
from gonghui.audit import service as audit
from gonghui.errors import NotFound, PermissionDenied
from gonghui.merchants.errors import MerchantsError
from gonghui.merchants.models import Cashier, Merchant
from gonghui.orgs.models import Org
from gonghui.tenancy import Actor, Permission, get_scoped, require_org, scoped


def create_merchant(
    session: Session, *, actor: Actor, org_id: int, name: str, address: str = ""
) -> Merchant:
    require_org(session, actor, Permission.MERCHANTS_MANAGE, org_id)
    merchant = Merchant(org_id=org_id, name=name.strip(), address=address.strip())
    session.add(merchant)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="merchants.create",
        org_id=org_id,
        subject_type="merchant",
        subject_id=merchant.id,
    )
    return merchant


def list_merchants(session: Session, *, actor: Actor) -> list[Merchant]:
    stmt = scoped(select(Merchant), actor, Permission.MERCHANTS_MANAGE)
    return list(session.scalars(stmt.order_by(Merchant.id)))


def get_merchant(session: Session, *, actor: Actor, merchant_id: int) -> Merchant:
    return get_scoped(session, Merchant, merchant_id, actor, Permission.MERCHANTS_MANAGE)


def set_merchant_active(
    session: Session, *, actor: Actor, merchant_id: int, active: bool
) -> Merchant:
    """Close a merchant (its cashiers can no longer redeem) or open it again."""
    merchant = get_merchant(session, actor=actor, merchant_id=merchant_id)
    merchant.active = active
    audit.record(
        session,
        actor=actor,
        action="merchants.open" if active else "merchants.close",
        org_id=merchant.org_id,
        subject_type="merchant",
        subject_id=merchant.id,
    )
    return merchant


def add_cashier(
    session: Session, *, actor: Actor, merchant_id: int, username: str, password: str, name: str
) -> Cashier:
    """A new cashier account of the merchant: a user who signs in with ``username`` and
    ``password`` and holds no staff role, so the console stays closed to them."""
    merchant = get_merchant(session, actor=actor, merchant_id=merchant_id)
    user = accounts.create_staff_user(
        session, username=username, password=password, display_name=name
    )
    cashier = Cashier(merchant_id=merchant.id, user_id=user.id, name=name.strip())
    session.add(cashier)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="merchants.add_cashier",
        org_id=merchant.org_id,
        subject_type="cashier",
        subject_id=cashier.id,
    )
    return cashier


def list_cashiers(session: Session, *, actor: Actor, merchant_id: int) -> list[Cashier]:
    merchant = get_merchant(session, actor=actor, merchant_id=merchant_id)
    return list(
        session.scalars(
            select(Cashier).where(Cashier.merchant_id == merchant.id).order_by(Cashier.id)
        )
    )


def set_cashier_active(
    session: Session, *, actor: Actor, merchant_id: int, cashier_id: int, active: bool
) -> Cashier:
    merchant = get_merchant(session, actor=actor, merchant_id=merchant_id)
    cashier = session.get(Cashier, cashier_id)
    if cashier is None or cashier.merchant_id != merchant.id:
        raise NotFound("cashier.not_found", f"cashier {cashier_id} not found")
    cashier.active = active
    audit.record(
        session,
        actor=actor,
        action="merchants.enable_cashier" if active else "merchants.disable_cashier",
        org_id=merchant.org_id,
        subject_type="cashier",
        subject_id=cashier.id,
    )
    return cashier


@dataclass(frozen=True)
class Seat:
    """A signed-in cashier at the till: who redeems, for which merchant of which org."""

    cashier_id: int
    cashier_name: str
    merchant_id: int
    merchant_name: str
    org_path: str


def seat(session: Session, *, user_id: int) -> Seat:
    """The till of the user's cashier account, if it and its merchant are open."""
    row = session.execute(
        select(Cashier.id, Cashier.name, Merchant.id, Merchant.name, Org.path)
        .join(Merchant, Merchant.id == Cashier.merchant_id)
        .join(Org, Org.id == Merchant.org_id)
        .where(Cashier.user_id == user_id, Cashier.active, Merchant.active)
    ).first()
    if row is None:
        raise PermissionDenied(MerchantsError.NOT_CASHIER, "this account is not an open cashier")
    return Seat(*row)

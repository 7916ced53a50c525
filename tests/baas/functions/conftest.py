"""Members for function tests: verified through the members service, signed in by token."""

from __future__ import annotations

from dataclasses import dataclass

from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.members import service as members
from gonghui.tenancy import SYSTEM
from tests.activities.conftest import id_number


@dataclass(frozen=True)
class SignedInMember:
    membership_id: int
    headers: dict[str, str]


def signed_in_member(org_id: int, *, n: int = 901, phone: str = "13912345678") -> SignedInMember:
    """A verified member of ``org_id`` (roster entry ``n``), signed in."""
    with unit_of_work() as session:
        user = create_user(session, display_name="王小明")
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=org_id, name="王小明", id_number=id_number(n), phone=phone
        )
        membership = members.verify(session, user_id=user.id, name="王小明", id_number=id_number(n))
        tokens = start_session(session, user=user)
    return SignedInMember(membership.id, {"Authorization": f"Bearer {tokens.access_token}"})

"""Members and staff for the notification stories, built through the services."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from gonghui import tasks
from gonghui.accounts.access import issue_access_token
from gonghui.accounts.models import Identity, Provider
from gonghui.accounts.service import create_user
from gonghui.accounts.tokens import start_session
from gonghui.db import unit_of_work
from gonghui.integrations.wechat import mini_program
from gonghui.integrations.wechat import official_account as oa_app
from gonghui.integrations.wechat_simulator import openid_for
from gonghui.members import service as members
from gonghui.members.idnumber import check_character
from gonghui.notifications.models import Delivery, Notification
from gonghui.tenancy import SYSTEM

_numbers = itertools.count(500)
_phones = itertools.count(1)


def id_number(n: int) -> str:
    first17 = f"110101{1950 + n // 1000:04d}0101{n % 1000:03d}"
    return first17 + check_character(first17)


@dataclass(frozen=True)
class Member:
    user_id: int
    membership_id: int
    org_id: int
    phone: str
    openid: str | None
    session_id: str
    oa_openid: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        token = issue_access_token(user_id=self.user_id, session_id=self.session_id)
        return {"Authorization": f"Bearer {token}"}


MemberFactory = Callable[..., Member]


def create_member(org_id: int, *, wechat: bool = False, official_account: bool = False) -> Member:
    """A verified member whose roster entry has a phone number (and, with ``wechat``, who
    signed in once with the platform's mini program; with ``official_account``, through
    the official account's web-page sign-in)."""
    n = next(_numbers)
    phone = f"1380000{next(_phones):04d}"
    name = f"通知会员{n}"
    with unit_of_work() as session:
        user = create_user(session, display_name=name)
        members.add_roster_entry(
            session, actor=SYSTEM, org_id=org_id, name=name, id_number=id_number(n), phone=phone
        )
        membership = members.verify(session, user_id=user.id, name=name, id_number=id_number(n))
        openid = None
        if wechat:
            openid = openid_for(mini_program().appid, f"person-{n}")
            session.add(
                Identity(
                    user_id=user.id,
                    provider=Provider.WECHAT_MINI,
                    app_id=mini_program().appid,
                    subject=openid,
                )
            )
        oa_openid = None
        if official_account:
            oa_openid = openid_for(oa_app().appid, f"person-{n}")
            session.add(
                Identity(
                    user_id=user.id,
                    provider=Provider.WECHAT_OFFICIAL,
                    app_id=oa_app().appid,
                    subject=oa_openid,
                )
            )
        tokens = start_session(session, user=user)
        made = Member(user.id, membership.id, org_id, phone, openid, tokens.session_id, oa_openid)
    # The verification's own notification (inbox, SMS) is delivered before the story starts.
    tasks.run_due()
    return made


@pytest.fixture
def make_member() -> MemberFactory:
    return create_member


def deliveries(user_id: int) -> list[tuple[str, str, str]]:
    """(channel, status, reason) of the user's deliveries, oldest first."""
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(Delivery.channel, Delivery.status, Delivery.reason)
            .join(Notification, Notification.id == Delivery.notification_id)
            .where(Notification.user_id == user_id)
            .order_by(Delivery.id)
        ).all()
    return [(str(c), str(s), r) for c, s, r in rows]

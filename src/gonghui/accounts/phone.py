"""Signing in with a phone number and an SMS code; linking a phone to a signed-in user."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gonghui.accounts import identities
from gonghui.accounts.models import User
from gonghui.accounts.otp import OtpPurpose, verify_code
from gonghui.accounts.tokens import TokenPair, start_session
from gonghui.errors import NotFound

DEFAULT_CHANNEL = "h5"


def sign_in_with_sms(
    session: Session,
    *,
    phone: str,
    code: str,
    channel: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair:
    """The code's phone signs in; the first sign-in creates the user."""
    phone = verify_code(session, phone=phone, code=code, purpose=OtpPurpose.LOGIN)
    user = identities.user_for_phone(session, phone=phone, channel=channel)
    return start_session(
        session, user=user, channel=channel or DEFAULT_CHANNEL, ip=ip, user_agent=user_agent
    )


def link_phone(session: Session, *, user_id: int, phone: str, code: str) -> User:
    """A signed-in user proves they hold ``phone`` (a code sent for linking) and links it."""
    phone = verify_code(session, phone=phone, code=code, purpose=OtpPurpose.LINK)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user.not_found", f"user {user_id} not found")
    return identities.link_phone(session, user=user, phone=phone)

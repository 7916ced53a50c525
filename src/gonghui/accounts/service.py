"""Users and staff sign-in by password."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.accounts import totp
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import Identity, Provider, SessionKind, User
from gonghui.accounts.passwords import hash_password, verify_password
from gonghui.accounts.tokens import TokenPair, start_session
from gonghui.accounts.totp import TotpChallenge
from gonghui.clock import now
from gonghui.errors import Conflict, Unauthenticated
from gonghui.pii import PiiField, blind_index, masked


def create_staff_user(
    session: Session,
    *,
    username: str,
    password: str,
    display_name: str = "",
    is_platform_admin: bool = False,
) -> User:
    username = username.strip().lower()
    taken = session.scalar(
        select(Identity.id).where(
            Identity.provider == Provider.PASSWORD,
            Identity.app_id == "",
            Identity.subject == username,
        )
    )
    if taken is not None:
        raise Conflict(AccountsError.USERNAME_TAKEN, f"username {username} is taken")
    user = User(display_name=display_name or username, is_platform_admin=is_platform_admin)
    session.add(user)
    session.flush()
    session.add(
        Identity(
            user_id=user.id,
            provider=Provider.PASSWORD,
            subject=username,
            secret_hash=hash_password(password),
        )
    )
    session.flush()
    return user


def create_user(session: Session, *, display_name: str = "") -> User:
    """A user with no sign-in method yet (channels link identities to it)."""
    user = User(display_name=display_name)
    session.add(user)
    session.flush()
    return user


def sign_in_with_password(
    session: Session,
    *,
    username: str,
    password: str,
    ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair | TotpChallenge:
    """Tokens for a right password, or, when the staff member has turned on two-step
    sign-in, the challenge that :func:`totp.complete_sign_in` exchanges for them."""
    identity = session.scalar(
        select(Identity).where(
            Identity.provider == Provider.PASSWORD,
            Identity.app_id == "",
            Identity.subject == username.strip().lower(),
        )
    )
    if not verify_password(identity.secret_hash if identity else None, password):
        raise Unauthenticated(AccountsError.INVALID_CREDENTIALS, "wrong username or password")
    assert identity is not None
    identity.last_used_at = now()
    user = session.get(User, identity.user_id)
    assert user is not None
    if totp.is_enabled(session, user_id=user.id):
        return totp.issue_challenge(user_id=user.id)
    return start_session(
        session, user=user, kind=SessionKind.STAFF, channel="console", ip=ip, user_agent=user_agent
    )


def find_user_by_phone(session: Session, *, phone: str) -> User | None:
    return session.scalar(select(User).where(User.phone_hash == blind_index(PiiField.PHONE, phone)))


def user_phone_masked(user: User) -> str | None:
    return masked(PiiField.PHONE, user.phone_enc)


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)

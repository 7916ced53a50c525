"""Users and staff sign-in by password (throttled per account and per address)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import ratelimit
from gonghui.accounts import totp
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import Identity, Provider, SessionKind, User
from gonghui.accounts.passwords import hash_password, verify_password
from gonghui.accounts.tokens import TokenPair, start_session
from gonghui.accounts.totp import TotpChallenge
from gonghui.clock import now
from gonghui.db import read_sync
from gonghui.errors import Conflict, RateLimited, Unauthenticated
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


# Password sign-in throttles: wrong passwords per account, attempts per address (each
# costs an argon2 hash, the point of flooding).
FAILURES_PER_ACCOUNT = 10
ATTEMPTS_PER_ADDRESS = 30
SIGN_IN_WINDOW_S = 15 * 60


def _throttled(retry_after_s: int) -> RateLimited:
    return RateLimited(
        AccountsError.SIGN_IN_THROTTLED,
        "too many sign-in attempts; try again later",
        retry_after_s=retry_after_s,
    )


def sign_in_with_password(
    session: Session,
    *,
    username: str,
    password: str,
    ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair | TotpChallenge:
    """Tokens for a right password, or, when the staff member has turned on two-step
    sign-in, the challenge that :func:`totp.complete_sign_in` exchanges for them.

    Throttled per account and per address before any hashing. The password hash is read
    in a read transaction of its own and checked outside any transaction (argon2 takes
    tens of milliseconds, and on SQLite every writer would wait); ``session`` is used only
    afterwards, for the sign-in's writes."""
    username = username.strip().lower()
    address = ratelimit.address_bucket(ip)
    if address is not None:
        per_address = ratelimit.hit(
            f"signin:addr:{address}", limit=ATTEMPTS_PER_ADDRESS, window_s=SIGN_IN_WINDOW_S
        )
        if not per_address.allowed:
            raise _throttled(per_address.retry_after_s)
    account_key = f"signin:user:{username[:150]}"
    account = ratelimit.check(account_key, limit=FAILURES_PER_ACCOUNT - 1)
    if not account.allowed:
        raise _throttled(account.retry_after_s)
    found = read_sync(
        lambda connection: connection.execute(
            select(Identity.id, Identity.secret_hash).where(
                Identity.provider == Provider.PASSWORD,
                Identity.app_id == "",
                Identity.subject == username,
            )
        ).one_or_none()
    )
    if not verify_password(found.secret_hash if found else None, password):
        ratelimit.hit(account_key, limit=FAILURES_PER_ACCOUNT, window_s=SIGN_IN_WINDOW_S)
        raise Unauthenticated(AccountsError.INVALID_CREDENTIALS, "wrong username or password")
    assert found is not None
    ratelimit.clear(account_key)
    identity = session.get(Identity, found.id)
    assert identity is not None
    identity.last_used_at = now()
    user = session.get(User, identity.user_id)
    assert user is not None
    if totp.is_enabled(session, user_id=user.id):
        return totp.issue_challenge(user_id=user.id)
    return start_session(
        session, user=user, kind=SessionKind.STAFF, channel="console", ip=ip, user_agent=user_agent
    )


def find_user_by_username(session: Session, *, username: str) -> User | None:
    """The user who signs in with ``username`` and a password (a staff account)."""
    return session.scalar(
        select(User)
        .join(Identity, Identity.user_id == User.id)
        .where(
            Identity.provider == Provider.PASSWORD,
            Identity.app_id == "",
            Identity.subject == username.strip().lower(),
        )
    )


def find_user_by_phone(session: Session, *, phone: str) -> User | None:
    return session.scalar(select(User).where(User.phone_hash == blind_index(PiiField.PHONE, phone)))


def user_phone_masked(user: User) -> str | None:
    return masked(PiiField.PHONE, user.phone_enc)


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def usernames(session: Session, *, user_ids: Collection[int]) -> dict[int, str]:
    """The password sign-in names of these users (staff), by user id."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(Identity.user_id, Identity.subject).where(
            Identity.provider == Provider.PASSWORD,
            Identity.app_id == "",
            Identity.user_id.in_(list(user_ids)),
        )
    )
    return {int(user_id): str(subject) for user_id, subject in rows}

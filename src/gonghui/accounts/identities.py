"""Finding or creating the one user behind a phone number or a WeChat identity.

One person, one account: a phone number belongs to at most one user (unique blind index
on ``accounts_user.phone_hash``), an openid to one user per app (unique identity), and a
unionid to one user across every WeChat app (the ``wechat_unionid`` anchor identity).
Each rule is held by a unique constraint, not by looking first: when two sign-ins of a
new person race, the loser's savepoint rolls back on the constraint and it retries,
finding what the winner wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.accounts import principal
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import Identity, Provider, User
from gonghui.clock import now
from gonghui.errors import Conflict
from gonghui.members.models import Membership
from gonghui.pii import PiiField, blind_index, mask, seal

T = TypeVar("T")
_RETRIES = 3


def _with_retry(session: Session, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` in a savepoint; on a unique-constraint race, run it again."""
    for _ in range(_RETRIES - 1):
        try:
            with session.begin_nested():
                return attempt()
        except IntegrityError:
            continue
    with session.begin_nested():
        return attempt()


_WECHAT = (Provider.WECHAT_MINI, Provider.WECHAT_OFFICIAL, Provider.WECHAT_APP)


@cache
def _identities_of() -> Select[int, str, str, str]:
    # Only the members' own rows, found from their ids: filtering by app in SQL as well
    # leads SQLite (without statistics) to walk every identity of the app instead, through
    # the unique (provider, app_id, subject) index: 16 ms for 40 members of 2,000.
    return (
        select(Membership.id, Identity.provider, Identity.app_id, Identity.subject)
        .join(Identity, Identity.user_id == Membership.user_id)
        .where(Membership.id.in_(bindparam("ms", expanding=True)))
    )


def wechat_openids(
    session: Session, *, membership_ids: Collection[int], appid: str
) -> dict[int, str]:
    """Each member's openid in the WeChat app ``appid`` (what WeChat Pay pays from and
    sends coupons to); members who have not signed in through that app once are missing."""
    if not membership_ids:
        return {}
    found: dict[int, str] = {}
    rows = session.connection().execute(_identities_of(), {"ms": list(membership_ids)})
    for membership_id, provider, app_id, subject in rows:
        if provider in _WECHAT and app_id == appid:
            found.setdefault(membership_id, subject)
    return found


def wechat_openid(session: Session, *, membership_id: int, appid: str) -> str | None:
    """One member's openid in ``appid`` (see :func:`wechat_openids`), or None."""
    return wechat_openids(session, membership_ids=[membership_id], appid=appid).get(membership_id)


def _find_identity(
    session: Session, provider: Provider, app_id: str, subject: str
) -> Identity | None:
    return session.scalar(
        select(Identity).where(
            Identity.provider == provider, Identity.app_id == app_id, Identity.subject == subject
        )
    )


def _phone_subject(phone_hash: bytes) -> str:
    # The PHONE identity names the number by its blind index, never in plain text.
    return phone_hash.hex()


def _set_phone(session: Session, user: User, phone: str, *, new_user: bool = False) -> None:
    """Give ``user`` this phone (and its PHONE identity), replacing a previous one. A user
    created in this transaction has no sign-in whose view could be stale: ``new_user``
    says so, and nothing is announced."""
    phone_hash = blind_index(PiiField.PHONE, phone)
    if user.phone_hash == phone_hash:
        return
    if user.phone_hash is not None:
        session.execute(
            delete(Identity).where(Identity.user_id == user.id, Identity.provider == Provider.PHONE)
        )
    user.phone_hash = phone_hash
    user.phone_enc = seal(PiiField.PHONE, phone)
    session.add(
        Identity(user_id=user.id, provider=Provider.PHONE, subject=_phone_subject(phone_hash))
    )
    session.flush()
    if not new_user:
        # What apps read of this user (the open platform's grants: a masked phone) changed.
        principal.changed(session, user_id=user.id)


def user_for_phone(session: Session, *, phone: str, channel: str | None = None) -> User:
    """The user who owns ``phone`` (normalized), created on first sign-in."""
    phone_hash = blind_index(PiiField.PHONE, phone)

    def attempt() -> User:
        user = session.scalar(select(User).where(User.phone_hash == phone_hash))
        if user is not None:
            return user
        user = User(display_name=mask(PiiField.PHONE, phone))
        session.add(user)
        session.flush()
        _set_phone(session, user, phone, new_user=True)
        identity = _find_identity(session, Provider.PHONE, "", _phone_subject(phone_hash))
        if identity is not None:
            identity.channel = channel
        return user

    return _with_retry(session, attempt)


def link_phone(session: Session, *, user: User, phone: str) -> User:
    """Attach a verified ``phone`` to a signed-in ``user``; refused if another user has it."""
    phone_hash = blind_index(PiiField.PHONE, phone)
    owner = session.scalar(select(User.id).where(User.phone_hash == phone_hash))
    if owner is not None and owner != user.id:
        raise Conflict(AccountsError.PHONE_TAKEN, "this phone belongs to another account")
    try:
        with session.begin_nested():
            _set_phone(session, user, phone)
    except IntegrityError as exc:
        raise Conflict(AccountsError.PHONE_TAKEN, "this phone belongs to another account") from exc
    return user


@dataclass(frozen=True)
class WeChatIdentity:
    provider: Provider
    app_id: str
    openid: str
    unionid: str | None
    channel: str | None = None
    phone: str | None = None  # normalized, from the mini program's phone-number check
    nickname: str | None = None


def user_for_wechat(session: Session, *, who: WeChatIdentity) -> User:
    """The user behind a WeChat sign-in: by openid, else by unionid, else by phone, else new.

    The identity is linked to that user, and so are the unionid (first user to claim it
    keeps it) and the phone (when the user has none and nobody else has it)."""

    def attempt() -> User:
        identity = _find_identity(session, who.provider, who.app_id, who.openid)
        anchor = (
            _find_identity(session, Provider.WECHAT_UNIONID, "", who.unionid)
            if who.unionid
            else None
        )
        user: User | None = None
        if identity is not None:
            user = session.get(User, identity.user_id)
            identity.last_used_at = now()
            if who.unionid and identity.unionid is None:
                identity.unionid = who.unionid
        elif anchor is not None:
            user = session.get(User, anchor.user_id)
        elif who.phone is not None:
            user = session.scalar(
                select(User).where(User.phone_hash == blind_index(PiiField.PHONE, who.phone))
            )
        new_user = user is None
        if user is None:
            user = User(display_name=who.nickname or "")
            session.add(user)
            session.flush()
        if identity is None:
            session.add(
                Identity(
                    user_id=user.id,
                    provider=who.provider,
                    app_id=who.app_id,
                    subject=who.openid,
                    unionid=who.unionid,
                    channel=who.channel,
                    last_used_at=now(),
                )
            )
        if who.unionid and anchor is None:
            session.add(
                Identity(
                    user_id=user.id,
                    provider=Provider.WECHAT_UNIONID,
                    subject=who.unionid,
                    unionid=who.unionid,
                    channel=who.channel,
                )
            )
        session.flush()
        if who.phone is not None and user.phone_hash is None:
            taken = session.scalar(
                select(User.id).where(User.phone_hash == blind_index(PiiField.PHONE, who.phone))
            )
            if taken is None:
                _set_phone(session, user, who.phone, new_user=new_user)
        return user

    return _with_retry(session, attempt)


def identities_of(session: Session, *, user_id: int) -> list[Identity]:
    return list(
        session.scalars(
            select(Identity)
            .where(Identity.user_id == user_id, Identity.provider != Provider.WECHAT_UNIONID)
            .order_by(Identity.id)
        )
    )

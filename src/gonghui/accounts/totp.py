"""Staff's optional second factor: time-based one-time codes (RFC 6238, through pyotp).

Enrolment stores a fresh secret, sealed with the PII key, as *pending*; it becomes active
only once the staff member proves their authenticator app holds it by sending a code.
Signing in with a password then yields a short-lived signed challenge instead of tokens,
and the tokens come only with the challenge plus a current code.

Every check accepts the current 30-second step and one step either side (clock drift),
and never a step at or before the last one accepted, so a code seen over a shoulder is
worthless once used. Wrong codes count like SMS codes do: after ``otp_max_attempts`` in a
row the factor is locked for ``otp_ttl_s`` seconds, whichever path the guesses came by.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import jwt
import pyotp
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from gonghui import clock
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import Identity, Provider, SessionKind, TotpCredential, User
from gonghui.accounts.tokens import TokenPair, start_session
from gonghui.audit import service as audit
from gonghui.db import rowcount
from gonghui.errors import Conflict, PermissionDenied, Unauthenticated
from gonghui.keys import get_keys
from gonghui.pii import seal_bytes, unseal_bytes
from gonghui.settings import get_settings
from gonghui.tenancy import Actor

ISSUER = "gonghui"
_SEAL_PURPOSE = "totp-secret"
_CHALLENGE_TYPE = "totp_challenge"
_ALGORITHM = "HS256"
# One step either side of now: authenticator clocks drift by a few seconds.
_DRIFT_STEPS = 1


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str


@dataclass(frozen=True)
class TotpChallenge:
    """The password was right; a TOTP code is still needed to finish signing in."""

    challenge: str
    expires_in: int


def _require_staff(actor: Actor) -> int:
    if not actor.is_staff or actor.user_id is None:
        raise PermissionDenied(AccountsError.NOT_STAFF, "staff only")
    return actor.user_id


def _credential(session: Session, user_id: int) -> TotpCredential | None:
    return session.get(TotpCredential, user_id, populate_existing=True)


def is_enabled(session: Session, *, user_id: int) -> bool:
    found = session.scalar(
        select(TotpCredential.enabled_at).where(TotpCredential.user_id == user_id)
    )
    return found is not None


def _account_name(session: Session, user_id: int) -> str:
    username = session.scalar(
        select(Identity.subject).where(
            Identity.user_id == user_id, Identity.provider == Provider.PASSWORD
        )
    )
    if username:
        return username
    user = session.get(User, user_id)
    return user.display_name if user and user.display_name else f"user-{user_id}"


def start_enrolment(session: Session, *, actor: Actor) -> TotpEnrolment:
    """A new pending secret for the staff member (replacing an unconfirmed one)."""
    user_id = _require_staff(actor)
    secret = pyotp.random_base32()
    row = _credential(session, user_id)
    if row is not None and row.enabled_at is not None:
        raise Conflict(AccountsError.TOTP_ALREADY_ENABLED, "two-step sign-in is already on")
    if row is None:
        row = TotpCredential(user_id=user_id, secret_enc=b"")
        session.add(row)
    row.secret_enc = seal_bytes(_SEAL_PURPOSE, secret.encode())
    row.last_step = None
    row.failed_attempts = 0
    row.locked_until = None
    row.created_at = clock.now()
    session.flush()
    return _enrolment(session, user_id, secret)


def pending_enrolment(session: Session, *, actor: Actor) -> TotpEnrolment | None:
    """The started but unconfirmed enrolment, to show its secret again; None otherwise."""
    user_id = _require_staff(actor)
    row = _credential(session, user_id)
    if row is None or row.enabled_at is not None:
        return None
    secret = unseal_bytes(_SEAL_PURPOSE, row.secret_enc).decode()
    return _enrolment(session, user_id, secret)


def _enrolment(session: Session, user_id: int, secret: str) -> TotpEnrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=_account_name(session, user_id), issuer_name=ISSUER
    )
    return TotpEnrolment(secret=secret, otpauth_uri=uri)


def confirm_enrolment(session: Session, *, actor: Actor, code: str) -> None:
    """Turn the pending secret on, once a code from it proves the app holds it."""
    user_id = _require_staff(actor)
    row = _credential(session, user_id)
    if row is None or row.enabled_at is not None:
        raise Conflict(AccountsError.TOTP_NOT_PENDING, "start the enrolment first")
    check_code(session, row=row, code=code)
    row.enabled_at = clock.now()
    audit.record(
        session,
        actor=actor,
        action="accounts.totp_enabled",
        subject_type="user",
        subject_id=user_id,
    )


def disable(session: Session, *, actor: Actor, code: str) -> None:
    """Turn the second factor off; only with a current code from it."""
    user_id = _require_staff(actor)
    row = _credential(session, user_id)
    if row is None or row.enabled_at is None:
        raise Conflict(AccountsError.TOTP_NOT_ENABLED, "two-step sign-in is not on")
    check_code(session, row=row, code=code)
    session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="accounts.totp_disabled",
        subject_type="user",
        subject_id=user_id,
    )


def check_code(session: Session, *, row: TotpCredential, code: str) -> None:
    """Accept ``code`` for ``row`` once, or count a wrong try (kept although the request
    fails) and lock the factor after too many."""
    at = clock.now()
    if row.locked_until is not None and row.locked_until > at:
        raise Unauthenticated(
            AccountsError.TOTP_LOCKED, "too many wrong codes; try again in a few minutes"
        )
    totp = pyotp.TOTP(unseal_bytes(_SEAL_PURPOSE, row.secret_enc).decode())
    given = code.strip().replace(" ", "")
    now_step = totp.timecode(at)
    matched = next(
        (
            step
            for step in range(now_step - _DRIFT_STEPS, now_step + _DRIFT_STEPS + 1)
            if hmac.compare_digest(totp.generate_otp(step), given)
        ),
        None,
    )
    if matched is None:
        _count_failure(session, row=row)
    # The conditional UPDATE makes "each step once" hold even for two requests at once.
    claimed = rowcount(
        session.execute(
            update(TotpCredential)
            .where(
                TotpCredential.user_id == row.user_id,
                or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < matched),
            )
            .values(last_step=matched, failed_attempts=0, locked_until=None)
            .execution_options(synchronize_session=False)
        )
    )
    if claimed != 1:
        raise Unauthenticated(
            AccountsError.TOTP_REUSED, "this code was already used; wait for the next one"
        )
    session.refresh(row)


def _count_failure(session: Session, *, row: TotpCredential) -> NoReturn:
    settings = get_settings()
    session.execute(
        update(TotpCredential)
        .where(TotpCredential.user_id == row.user_id)
        .values(failed_attempts=TotpCredential.failed_attempts + 1)
        .execution_options(synchronize_session=False)
    )
    failed = (
        session.scalar(
            select(TotpCredential.failed_attempts).where(TotpCredential.user_id == row.user_id)
        )
        or 0
    )
    left = max(0, settings.otp_max_attempts - failed)
    if left == 0:
        session.execute(
            update(TotpCredential)
            .where(TotpCredential.user_id == row.user_id)
            .values(
                failed_attempts=0,
                locked_until=clock.now() + timedelta(seconds=settings.otp_ttl_s),
            )
            .execution_options(synchronize_session=False)
        )
        raise Unauthenticated(
            AccountsError.TOTP_LOCKED,
            "too many wrong codes; try again in a few minutes",
            {"attempts_left": 0},
            keep_changes=True,
        )
    raise Unauthenticated(
        AccountsError.TOTP_INVALID, "wrong code", {"attempts_left": left}, keep_changes=True
    )


def issue_challenge(*, user_id: int) -> TotpChallenge:
    """A signed, short-lived note that ``user_id`` passed the password step."""
    ttl = get_settings().otp_ttl_s
    issued = clock.now()
    payload = {
        "sub": str(user_id),
        "typ": _CHALLENGE_TYPE,
        "exp": int((issued + timedelta(seconds=ttl)).timestamp()),
    }
    token = jwt.encode(payload, get_keys().token_signing_key, algorithm=_ALGORITHM)
    return TotpChallenge(challenge=token, expires_in=ttl)


def _challenge_user(challenge: str) -> int:
    invalid = Unauthenticated(
        AccountsError.TOTP_CHALLENGE_INVALID, "the sign-in has expired; enter the password again"
    )
    try:
        payload = jwt.decode(
            challenge,
            get_keys().token_signing_key,
            algorithms=[_ALGORITHM],
            # Expiry against the server clock (which tests can move), below.
            options={"require": ["exp", "sub", "typ"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise invalid from exc
    if payload["typ"] != _CHALLENGE_TYPE or int(payload["exp"]) < clock.now().timestamp():
        raise invalid
    return int(payload["sub"])


def complete_sign_in(
    session: Session,
    *,
    challenge: str,
    code: str,
    ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair:
    """The second step of a staff sign-in: the challenge from the password step and a code."""
    user_id = _challenge_user(challenge)
    row = _credential(session, user_id)
    user = session.get(User, user_id)
    if row is None or row.enabled_at is None or user is None:
        # Turned off since the password step: the challenge no longer means anything.
        raise Unauthenticated(
            AccountsError.TOTP_CHALLENGE_INVALID,
            "the sign-in has expired; enter the password again",
        )
    check_code(session, row=row, code=code)
    return start_session(
        session, user=user, kind=SessionKind.STAFF, channel="console", ip=ip, user_agent=user_agent
    )

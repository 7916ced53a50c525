"""SMS one-time codes: issue and check them, and keep people from abusing them.

A code is 6 digits, stored only as an HMAC under a subkey of the PII key (a stolen
database does not give the codes away, and six digits are too few for an unkeyed hash).
It lives ``otp_ttl_s`` seconds; only the newest code of a phone and purpose counts; after
``otp_max_attempts`` wrong tries it is locked. Sending is limited by a resend cooldown, a
per-phone per-day cap (the local day) and a per-address per-hour cap (IPv6 by /64, in
:mod:`gonghui.ratelimit`). The SMS goes out after the code is committed. Housekeeping deletes codes
once they can neither be used nor count against a limit (:func:`purge_expired`).

Only the per-address cap goes through :mod:`gonghui.ratelimit` (so into Redis when it is
configured). The per-phone cooldown and daily cap are counts of the stored codes, taken in
the transaction that stores the new code (on PostgreSQL under a per-phone advisory lock):
the code has to be in the database anyway for :func:`verify_code`, so the check and the
code commit together, a rolled-back send or one the provider refused (its code deleted)
does not count, and every server process already shares them. Counters in Redis would be
a second record of the same sends, to be kept in step by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache, partial

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from gonghui import clock, ratelimit
from gonghui.accounts.errors import AccountsError
from gonghui.accounts.models import OtpCode
from gonghui.db import on_commit, rowcount, unit_of_work
from gonghui.errors import InvalidInput, RateLimited, Unauthenticated, field_error
from gonghui.integrations.sms import OtpMessage, SmsSender, get_sms_sender
from gonghui.keys import get_keys
from gonghui.pii import PiiField, blind_index, mask
from gonghui.settings import get_settings

_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")
# How long a sent code still counts against the send limits: the per-phone cap looks back
# to the start of the local day (at most a day).
COUNTED_FOR = timedelta(days=1, hours=1)


class OtpPurpose(StrEnum):
    LOGIN = "login"
    LINK = "link"


@dataclass(frozen=True)
class OtpSent:
    phone_masked: str
    expires_in: int
    resend_after: int


def normalize_phone(raw: str, *, field: str = "phone") -> str:
    """A mainland mobile number, 11 digits, with an optional +86 in front."""
    value = raw.strip().replace(" ", "").replace("-", "")
    if value.startswith("+86"):
        value = value[3:]
    if not _MAINLAND_MOBILE.fullmatch(value):
        raise InvalidInput(
            AccountsError.PHONE_INVALID,
            "not a mainland mobile number",
            [field_error(field, AccountsError.PHONE_INVALID, "expected 1[3-9] and 9 digits")],
        )
    return value


@lru_cache
def _code_key() -> bytes:
    # A subkey, so that a code hash can never double as a blind index.
    return hmac.digest(get_keys().pii_hmac_key, b"gonghui/otp-code/v1", "sha256")


def _code_hash(phone_hash: bytes, purpose: str, code: str) -> bytes:
    message = phone_hash + purpose.encode() + b"\x00" + code.encode()
    return hmac.digest(_code_key(), message, "sha256")


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _seconds_until(instant: datetime, at: datetime) -> int:
    return max(1, math.ceil((instant - at).total_seconds()))


def _serialize_senders(session: Session, keys: list[bytes]) -> None:
    """On PostgreSQL, queue concurrent sends to the same phone (transaction-scoped
    advisory locks taken in key order) so that the counts below cannot be raced past.
    SQLite writers are already serialized by BEGIN IMMEDIATE."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted(
        int.from_bytes(hashlib.sha256(b"otp-send:" + k).digest()[:8], "big", signed=True)
        for k in keys
    )
    for lock_id in ids:
        session.execute(select(func.pg_advisory_xact_lock(lock_id)))


def send_code(
    session: Session,
    *,
    phone: str,
    purpose: OtpPurpose = OtpPurpose.LOGIN,
    ip: str | None = None,
    sender: SmsSender | None = None,
) -> OtpSent:
    settings = get_settings()
    phone = normalize_phone(phone)
    phone_hash = blind_index(PiiField.PHONE, phone)
    # Every request counts against its address (IPv6 by /64), refused ones too: the limit
    # is against flooding. Counted first, in its own transaction (see gonghui.ratelimit).
    address = ratelimit.address_bucket(ip)
    if address is not None:
        per_address = ratelimit.hit(
            f"otp:addr:{address}", limit=settings.otp_max_per_ip_per_hour, window_s=3600
        )
        if not per_address.allowed:
            raise RateLimited(
                AccountsError.OTP_IP_THROTTLED,
                "too many codes requested from this network; try again later",
                retry_after_s=per_address.retry_after_s,
            )
    _serialize_senders(session, [b"phone:" + phone_hash])
    at = clock.now()

    last = session.scalar(
        select(func.max(OtpCode.created_at)).where(OtpCode.phone_hash == phone_hash)
    )
    cooldown_ends = last + timedelta(seconds=settings.otp_resend_cooldown_s) if last else None
    if cooldown_ends is not None and at < cooldown_ends:
        raise RateLimited(
            AccountsError.OTP_COOLDOWN,
            "a code was just sent to this phone; wait before asking again",
            retry_after_s=_seconds_until(cooldown_ends, at),
        )

    day_start = clock.start_of_local_day(at)
    sent_today = session.scalar(
        select(func.count())
        .select_from(OtpCode)
        .where(OtpCode.phone_hash == phone_hash, OtpCode.created_at >= day_start)
    )
    if (sent_today or 0) >= settings.otp_max_per_phone_per_day:
        next_day = clock.start_of_local_day(day_start + timedelta(hours=36))
        raise RateLimited(
            AccountsError.OTP_PHONE_THROTTLED,
            "too many codes for this phone today",
            retry_after_s=_seconds_until(next_day, at),
        )

    code = _new_code()
    row = OtpCode(
        phone_hash=phone_hash,
        code_hash=_code_hash(phone_hash, purpose, code),
        purpose=purpose,
        ip=ip,
        created_at=at,
        expires_at=at + timedelta(seconds=settings.otp_ttl_s),
    )
    session.add(row)
    session.flush()
    message = OtpMessage(phone=phone, code=code, ttl_minutes=max(1, settings.otp_ttl_s // 60))
    # Sent once the code is committed, so that no write transaction waits on the provider;
    # if the provider refuses, the code is deleted again and does not count.
    on_commit(session, partial(_deliver, sender or get_sms_sender(), message, row.id))
    return OtpSent(
        phone_masked=mask(PiiField.PHONE, phone),
        expires_in=settings.otp_ttl_s,
        resend_after=settings.otp_resend_cooldown_s,
    )


def _deliver(sender: SmsSender, message: OtpMessage, code_id: int) -> None:
    try:
        sender.send_code(message)
    except Exception:
        with unit_of_work() as session:
            session.execute(delete(OtpCode).where(OtpCode.id == code_id))
        raise


def verify_code(session: Session, *, phone: str, code: str, purpose: OtpPurpose) -> str:
    """Consume the pending code of ``phone``; returns the normalized phone.

    A wrong code counts against the code's attempts even though the request fails
    (``keep_changes``). Of two requests presenting the right code at once, exactly one
    consumes it (the conditional UPDATE below)."""
    settings = get_settings()
    phone = normalize_phone(phone)
    phone_hash = blind_index(PiiField.PHONE, phone)
    at = clock.now()
    row = session.scalar(
        select(OtpCode)
        .where(OtpCode.phone_hash == phone_hash, OtpCode.purpose == purpose)
        .order_by(OtpCode.created_at.desc(), OtpCode.id.desc())
        .limit(1)
    )
    if row is None or row.consumed_at is not None:
        raise Unauthenticated(AccountsError.OTP_INVALID, "no code is pending; request a new one")
    if row.attempts >= settings.otp_max_attempts:
        raise Unauthenticated(AccountsError.OTP_LOCKED, "too many wrong codes; request a new one")
    if row.expires_at <= at:
        raise Unauthenticated(AccountsError.OTP_EXPIRED, "the code has expired; request a new one")

    if not hmac.compare_digest(row.code_hash, _code_hash(phone_hash, purpose, code)):
        session.execute(
            update(OtpCode)
            .where(OtpCode.id == row.id, OtpCode.attempts < settings.otp_max_attempts)
            .values(attempts=OtpCode.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        attempts = session.scalar(select(OtpCode.attempts).where(OtpCode.id == row.id)) or 0
        left = max(0, settings.otp_max_attempts - attempts)
        if left == 0:
            raise Unauthenticated(
                AccountsError.OTP_LOCKED,
                "too many wrong codes; request a new one",
                {"attempts_left": 0},
                keep_changes=True,
            )
        raise Unauthenticated(
            AccountsError.OTP_INVALID, "wrong code", {"attempts_left": left}, keep_changes=True
        )

    claimed = rowcount(
        session.execute(
            update(OtpCode)
            .where(
                OtpCode.id == row.id,
                OtpCode.consumed_at.is_(None),
                OtpCode.attempts < settings.otp_max_attempts,
                OtpCode.expires_at > at,
            )
            .values(consumed_at=at)
            .execution_options(synchronize_session=False)
        )
    )
    if claimed != 1:
        raise Unauthenticated(AccountsError.OTP_INVALID, "this code has already been used")
    return phone


def purge_expired(session: Session, *, at: datetime | None = None) -> int:
    """Delete the codes that have expired and no longer count against a send limit;
    returns how many."""
    at = at or clock.now()
    return rowcount(
        session.execute(
            delete(OtpCode).where(OtpCode.expires_at < at, OtpCode.created_at < at - COUNTED_FOR)
        )
    )

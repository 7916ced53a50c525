"""Challenges: posed when a client looks automated, answered by retrying the action.

A challenge id is a signed token (a nonce, its expiry and the member it was issued to),
so refusing an action writes nothing: a script that hammers an endpoint costs the
database nothing. The row (the answer's keyed hash, wrong answers, pictures shown) is
written when the member fetches the picture; fetching it again poses a new puzzle under
the same id, a limited number of times. An answer is accepted once, before the expiry,
within ``MAX_ATTEMPTS`` wrong ones.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from gonghui import ratelimit
from gonghui.clock import now
from gonghui.db import rowcount, unit_of_work
from gonghui.errors import Conflict, NotFound, RateLimited
from gonghui.keys import get_keys
from gonghui.risk import captcha
from gonghui.risk.errors import RiskError
from gonghui.risk.models import Challenge
from gonghui.settings import get_settings

MAX_ATTEMPTS = 5
MAX_RENDERS = 10
# Pictures a member may fetch, all challenges together, per window.
RENDERS_PER_ACCOUNT = 30
RENDERS_WINDOW_S = 600


@lru_cache(maxsize=1)
def _key() -> bytes:
    return hmac.new(get_keys().token_signing_key, b"gonghui risk challenge", "sha256").digest()


def _mac(*parts: object) -> str:
    raw = hmac.new(_key(), ":".join(map(str, parts)).encode(), "sha256").digest()
    return base64.urlsafe_b64encode(raw[:16]).decode().rstrip("=")


def issue(membership_id: int) -> str:
    """A new challenge id for this member (no I/O)."""
    nonce = secrets.token_urlsafe(12)
    expires = int(now().timestamp()) + get_settings().risk_challenge_ttl_s
    return f"{nonce}.{expires}.{_mac(membership_id, nonce, expires)}"


@dataclass(frozen=True)
class _Token:
    nonce: str
    expires_at: datetime


def _read(challenge_id: str, membership_id: int) -> _Token:
    """The token's parts if it is this member's and well formed (expired or not)."""
    nonce, _, rest = challenge_id.partition(".")
    expires, _, mac = rest.partition(".")
    if (
        not nonce
        or len(nonce) > 32
        or not expires.isdigit()
        or not hmac.compare_digest(mac, _mac(membership_id, nonce, expires))
    ):
        raise NotFound(RiskError.CHALLENGE_INVALID, "no such challenge")
    return _Token(nonce, datetime.fromtimestamp(int(expires), tz=UTC))


def _digest(nonce: str, answer: str) -> str:
    return hmac.new(_key(), f"{nonce}:{answer}".encode(), "sha256").hexdigest()


def picture(*, membership_id: int, challenge_id: str) -> bytes:
    """The challenge's picture, a new puzzle each time (the previous answer no longer
    counts); wrong answers already given still count."""
    token = _read(challenge_id, membership_id)
    if token.expires_at <= now():
        raise Conflict(RiskError.CHALLENGE_EXPIRED, "this challenge has expired; act again")
    limit = ratelimit.hit(
        f"risk:render:{membership_id}", limit=RENDERS_PER_ACCOUNT, window_s=RENDERS_WINDOW_S
    )
    if not limit.allowed:
        raise RateLimited(
            RiskError.CHALLENGE_RENDERS,
            "too many pictures asked for; wait a little",
            retry_after_s=limit.retry_after_s,
        )
    provider = captcha.provider()
    puzzle = provider.pose()
    with unit_of_work() as session:
        row = session.get(Challenge, token.nonce, with_for_update=True)
        if row is None:
            row = Challenge(
                id=token.nonce,
                membership_id=membership_id,
                provider=provider.name,
                answer_hash="",
                attempts=0,
                renders=0,
                expires_at=token.expires_at,
            )
            session.add(row)
        elif row.solved_at is not None or row.renders >= MAX_RENDERS:
            raise Conflict(RiskError.CHALLENGE_EXPIRED, "this challenge is spent; act again")
        row.answer_hash = _digest(token.nonce, puzzle.answer)
        row.renders += 1
    if puzzle.image_png is None:
        raise NotFound(RiskError.CHALLENGE_INVALID, "this challenge has no picture")
    return puzzle.image_png


def solve(*, membership_id: int, challenge_id: str, answer: str) -> None:
    """Accept ``answer`` to the member's challenge once, or raise: wrong (with attempts
    left), expired or spent (act again for a new one). In a transaction of its own, so a
    wrong answer counts even though the action is refused."""
    token = _read(challenge_id, membership_id)
    at = now()
    if token.expires_at <= at:
        raise Conflict(RiskError.CHALLENGE_EXPIRED, "this challenge has expired; act again")
    provider = captcha.provider()
    with unit_of_work() as session:
        row = session.get(Challenge, token.nonce)
        if row is None or row.solved_at is not None or row.attempts >= MAX_ATTEMPTS:
            raise Conflict(RiskError.CHALLENGE_EXPIRED, "this challenge is spent; act again")
        if provider.matches(answer[:64], row.answer_hash, lambda a: _digest(token.nonce, a)):
            took = session.execute(
                update(Challenge)
                .where(Challenge.id == token.nonce, Challenge.solved_at.is_(None))
                .values(solved_at=at)
            )
            if rowcount(took) == 1:
                return
            raise Conflict(RiskError.CHALLENGE_EXPIRED, "this challenge is spent; act again")
        left = MAX_ATTEMPTS - row.attempts - 1
        session.execute(
            update(Challenge)
            .where(Challenge.id == token.nonce)
            .values(attempts=Challenge.attempts + 1)
        )
    raise Conflict(
        RiskError.CHALLENGE_WRONG,
        "wrong answer" if left else "wrong answer; this challenge is spent, act again",
        {"attempts_left": left},
    )


def purge_expired(session: Session, *, at: datetime | None = None) -> int:
    """Delete challenges a day past their expiry (housekeeping)."""
    cutoff = (at or now()) - timedelta(days=1)
    return rowcount(session.execute(delete(Challenge).where(Challenge.expires_at < cutoff)))

"""The provider's signing keys: RSA 2048, RS256 (the one algorithm every OpenID Connect
client must accept).

The newest key signs. ``gonghui oauth rotate-key`` (or :func:`rotate`) adds a key and
retires the others; a retired key stays in the JWKS for :data:`RETIRED_KEPT_S` (longer
than any ``id_token`` lives), so a client holding a token signed just before the rotation
can still check it. Private halves are sealed with the deployment's encryption key.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from gonghui import pii
from gonghui.clock import now
from gonghui.openplatform.models import SigningKey

ALGORITHM = "RS256"
ID_TOKEN_TTL_S = 3600
# A retired key is served this long: every id_token it signed has expired by then.
RETIRED_KEPT_S = 2 * ID_TOKEN_TTL_S

_lock = threading.Lock()
_private: dict[str, RSAKey] = {}  # kid -> key, unsealed once per process


def _purpose(kid: str) -> str:
    return f"oauth-signing-key:{kid}"


def _new(session: Session) -> SigningKey:
    key = RSAKey.generate_key(2048, auto_kid=True)
    assert key.kid is not None
    pem = key.as_pem(private=True)
    row = SigningKey(
        kid=key.kid,
        private_sealed=pii.seal_bytes(_purpose(key.kid), pem),
        public_jwk={**key.as_dict(private=False), "use": "sig", "alg": ALGORITHM},
    )
    session.add(row)
    session.flush()
    return row


def rotate(session: Session) -> str:
    """A new signing key; the others retire (still served until their tokens expire).
    Returns the new key's id."""
    session.execute(
        update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now())
    )
    return _new(session).kid


def current(session: Session) -> tuple[str, RSAKey]:
    """The key that signs now (made on first use), as (kid, private key)."""
    row = session.scalar(
        select(SigningKey).where(SigningKey.retired_at.is_(None)).order_by(SigningKey.id.desc())
    )
    if row is None:
        row = _new(session)
    with _lock:
        key = _private.get(row.kid)
        if key is None:
            pem = pii.unseal_bytes(_purpose(row.kid), row.private_sealed)
            key = RSAKey.import_key(pem, {"kid": row.kid, "use": "sig", "alg": ALGORITHM})
            _private[row.kid] = key
    return row.kid, key


def jwks(session: Session) -> dict[str, Any]:
    """The public keys a client checks ``id_token``s with: the signing one and the retired
    ones whose tokens may still be valid, newest first."""
    kept_since = now() - timedelta(seconds=RETIRED_KEPT_S)
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > kept_since))
        .order_by(SigningKey.id.desc())
    )
    return {"keys": [dict(row.public_jwk) for row in rows]}

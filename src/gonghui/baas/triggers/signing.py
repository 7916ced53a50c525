"""Webhook signatures: ``X-Gonghui-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``
with ``X-Gonghui-Timestamp: <unix seconds>``. Signing the timestamp with the body lets a
receiver refuse replays of an old delivery (the same scheme as Stripe's and Svix's).

OAuth clients' endpoints are signed as Standard Webhooks
(https://www.standardwebhooks.com/, :func:`standard_signature`), which integrators'
libraries verify as they are."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from gonghui.baas.functions.secrets import unseal_secrets
from gonghui.baas.triggers.models import Trigger

TOLERANCE_S = 300


def trigger_secret(trigger: Trigger) -> str | None:
    """The key a trigger's outgoing webhooks are signed with, or incoming ones checked by."""
    # Sealed under the negated id: the associated data differs from any function's.
    return unseal_secrets(-trigger.id, trigger.secret_enc).get("secret")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, presented: str, *, now_s: float) -> bool:
    if abs(now_s - timestamp) > TOLERANCE_S:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), presented.strip())


STANDARD_PREFIX = "whsec_"


def new_standard_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return STANDARD_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed
    by the base64-decoded secret."""
    key = base64.b64decode(secret.removeprefix(STANDARD_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()

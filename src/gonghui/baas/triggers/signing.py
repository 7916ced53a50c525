"""Webhook signatures: ``X-Gonghui-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``
with ``X-Gonghui-Timestamp: <unix seconds>``. Signing the timestamp with the body lets a
receiver refuse replays of an old delivery (the same scheme as Stripe's and Svix's)."""

from __future__ import annotations

import hashlib
import hmac

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

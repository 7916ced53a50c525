"""Webhook signatures: ``X-Gonghui-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>``
with ``X-Gonghui-Timestamp: <unix seconds>``. Signing the timestamp with the body lets a
receiver refuse replays of an old delivery (the same scheme as Stripe's and Svix's)."""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: int, body: bytes, presented: str, *, now_s: float) -> bool:
    if abs(now_s - timestamp) > TOLERANCE_S:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), presented.strip())

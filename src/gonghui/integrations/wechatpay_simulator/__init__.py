"""A local stand-in for the WeChat Pay API v3 endpoints gonghui uses (development, tests).

It speaks the protocol as WeChat Pay does (see :mod:`gonghui.integrations.wechatpay`):
every request's ``Authorization`` is checked against the merchant's public key (unknown
merchant, stale timestamp or bad signature: 401 ``SIGN_ERROR``; one dependency,
:data:`.protocol.SignedCall`, for every endpoint), every answer is signed with the
platform's key, and notifications are signed and their resource sealed with
AEAD_AES_256_GCM under the API v3 key. The development merchant's and the platform's keys
are generated once into ``data_dir/secrets/wechatpay-simulator.json``
(:func:`development_merchant`), so every process of one deployment shares them.

Endpoints: 代金券 stocks and coupons (:mod:`.coupons`), JSAPI payments and refunds
(:mod:`.payments`), and the bill files both hand out for reconciliation (:mod:`.bills`).
Control endpoints under ``/_sim/wechatpay/_control`` play the outside world: a member spends
a coupon (``COUPON.USE``), a payer pays (``TRANSACTION.SUCCESS``; also a payment that raced
the order's close), a refund reaches the payer, is closed or turns abnormal
(``REFUND.SUCCESS``, ``.CLOSED``, ``.ABNORMAL``), each notification optionally twice or held
back and released later; the merchant's balance runs short for refunds (``NOT_ENOUGH``);
coupon sends past the merchant's frequency (``sends_per_s``, default 500 a second as
WeChat Pay documents) answered 429 ``FREQUENCY_LIMITED``; faults on the next calls
(``timeout``: no answer before the client gives up; ``error``: 500 ``SYSTEM_ERROR``;
``lost``: the call takes effect but its answer is a 500), and the answer latency (default
``wechatpay_simulator_latency_ms``, 100 ms, WeChat Pay's documented processing time). State
lives in this process's memory, as the WeChat simulator's does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gonghui.integrations.wechatpay_simulator import bills, coupons, payments, protocol
from gonghui.integrations.wechatpay_simulator.protocol import (
    PUBLIC_KEY_ID,
    development_merchant,
    load_secrets,
    notification,
)

__all__ = [
    "PUBLIC_KEY_ID",
    "development_merchant",
    "load_secrets",
    "notification",
    "reset",
    "router",
    "frequency_limited",
    "send_calls",
    "standalone_app",
]

router = APIRouter(prefix=protocol.PREFIX, tags=["simulators"], include_in_schema=False)
control = APIRouter(prefix="/_control")


def reset() -> None:
    protocol.reset()
    coupons.reset()
    payments.reset()
    bills.reset()


def send_calls() -> int:
    """How many coupon sends were asked for (each retry counts)."""
    return coupons.send_calls()


def frequency_limited() -> int:
    """How many coupon sends were answered 429 FREQUENCY_LIMITED."""
    return coupons.frequency_limited()


@control.post("/notifications/release")
def release_held() -> dict[str, Any]:
    """Send the notifications held back (late notifications)."""
    return {"statuses": protocol.release_held()}


class _Faults(BaseModel):
    faults: list[str] = Field(default=[], max_length=100)
    latency_ms: int | None = Field(default=None, ge=0, le=60_000)
    sign_with_certificate: bool = False
    # Coupon sends a second per merchant before 429 FREQUENCY_LIMITED (0: none; default the
    # setting, WeChat Pay's documented 500).
    sends_per_s: int | None = Field(default=None, ge=0, le=100_000)


@control.post("/faults")
def set_faults(body: _Faults) -> dict[str, Any]:
    """The next calls' faults in order (``timeout``, ``error``, ``lost``), the latency and
    which key id answers carry (the public key's, or the platform certificate's serial)."""
    bad = [f for f in body.faults if f not in ("timeout", "error", "lost")]
    if bad:
        return {"refused": bad}
    latency_s = None if body.latency_ms is None else body.latency_ms / 1000
    protocol.set_faults(body.faults, latency_s, body.sign_with_certificate)
    coupons.set_send_limit(body.sends_per_s)
    return {"faults": body.faults}


router.include_router(coupons.router)
router.include_router(payments.router)
router.include_router(bills.router)
router.include_router(control)


def standalone_app() -> Any:
    """The simulator alone, as its own server (``uvicorn --factory``): one process holds
    its state for every process of a deployment (the benchmarks use it so)."""
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    return app

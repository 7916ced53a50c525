"""Local simulators of outside services, mounted under ``/_sim`` outside production."""

from __future__ import annotations

from fastapi import FastAPI


def mount_simulators(app: FastAPI) -> None:
    """Each integration adds its simulator router here."""
    from gonghui.integrations import (
        aliyun_sms_simulator,
        sms_outbox,
        wechat_simulator,
        wechatpay_simulator,
    )

    app.include_router(sms_outbox.router)
    app.include_router(aliyun_sms_simulator.router)
    app.include_router(wechat_simulator.router)
    app.include_router(wechatpay_simulator.router)

"""Helpers the reconciliation tests share: a difference planted at WeChat Pay."""

from __future__ import annotations

import httpx

from gonghui.integrations.wechatpay import WechatPayClient, configured_merchant


def planted_payment(api: httpx.Client) -> str:
    """A payment WeChat Pay has that no order of ours made (its notification goes nowhere)."""
    client = WechatPayClient(configured_merchant())
    client.call(
        "POST",
        "/v3/pay/transactions/jsapi",
        {
            "appid": "wx_sim_mini",
            "mchid": client.merchant.mchid,
            "description": "不是我们的订单",
            "out_trade_no": "PLANTED0001",
            "notify_url": "http://127.0.0.1:9/nowhere",
            "amount": {"total": 4321},
            "payer": {"openid": "o-somebody"},
        },
    )
    paid = api.post("/_sim/wechatpay/_control/transactions/PLANTED0001/pay", json={})
    assert paid.json()["paid"] is True
    return "PLANTED0001"

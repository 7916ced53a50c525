"""Activity configurations the browser stories share."""

from __future__ import annotations

GRAB = {
    "kind": "voucher_grab",
    "voucher_grab": {
        "stocks": [
            {
                "name": "十元消费券",
                "coupon_amount_cents": 1000,
                "threshold_cents": 5000,
                "max_coupons": 100,
                "max_per_member": 1,
            }
        ]
    },
}

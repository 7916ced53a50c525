"""Concurrent checkouts of one hot product: wrk places mall orders against a 2-process
server, compared with GET /api/v1/ping.

Seeds verified members with WeChat linked (pre-issued tokens), one product on the shelf
with one SKU of BENCH_STOCK units, and a mall sale subsidising 10 % of each order from a
budget of BENCH_BUDGET_CENTS, which the run spends part-way (later orders get no subsidy).
Each request checks out one unit with the sale's subsidy; orders are measured as in
draw_burst (rounds of ping / checkouts / ping, the median round reported). Every answer
must be a 201 (the stock outlasts the run; running out is tested in tests/mall).
Invariants: units ordered, units sold and stock left add up to the stock, no stock below
zero, each order's total is its goods less its subsidy (at least a cent), the budget spent
equals the orders' subsidies and never passes the budget.

Environment: BENCH_MEMBERS (20000), BENCH_STOCK (10,000,000), BENCH_BUDGET_CENTS
(1,000,000: two thousand orders' subsidies), BENCH_ROUNDS (3), BENCH_ROUND_S (5 s a run),
BENCH_CONNECTIONS (64), GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir).
Last line: one JSON object (see bench/README.md).
"""

from __future__ import annotations

import json
import os

from _harness import emit, member_burst
from _seed import LotterySeed, member_server, seed

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "20000"))
STOCK = int(os.environ.get("BENCH_STOCK", "10000000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
PRICE_CENTS = 5000
BUDGET_CENTS = int(os.environ.get("BENCH_BUDGET_CENTS", "1000000"))


def main() -> None:
    server = member_server()
    activity_id, tokens, seeded = seed(
        server,
        LotterySeed(
            members=MEMBERS,
            org_code="BENCH",
            title="bench",
            stock=STOCK,
            value_cents=PRICE_CENTS,
            budget_cents=BUDGET_CENTS,
            kind="mall",
        ),
    )
    sku_id = int(str(seeded["sku_id"]))
    body = json.dumps(
        {
            "items": [{"sku_id": sku_id, "quantity": 1}],
            "activity_id": activity_id,
            "address": {"name": "压测", "phone": "13800000000", "address": "压测路 1 号"},
        },
        ensure_ascii=False,
    )

    def scalar(sql: str) -> int:
        return int(server.scalar(sql, a=activity_id, s=sku_id) or 0)

    try:
        server.start()
        burst = member_burst(
            server,
            tokens,
            name="checkouts",
            label="mall checkout",
            path="/api/v1/me/mall/orders",
            body=body,
            rounds=ROUNDS,
            round_s=ROUND_S,
        )
        rss = server.peak_rss_mb()
    finally:
        server.stop()

    orders = scalar("SELECT COUNT(*) FROM mall_order")
    units = scalar("SELECT COALESCE(SUM(quantity), 0) FROM mall_order_line WHERE sku_id = :s")
    stock_left = scalar("SELECT stock FROM mall_sku WHERE id = :s")
    sold = scalar("SELECT sold FROM mall_sku WHERE id = :s")
    subsidies = scalar("SELECT COALESCE(SUM(subsidy_cents), 0) FROM mall_order")
    spent = scalar("SELECT cents_spent FROM benefits_budget WHERE activity_id = :a")
    bad_totals = scalar(
        "SELECT COUNT(*) FROM mall_order WHERE total_cents != goods_cents - subsidy_cents "
        "- voucher_cents OR total_cents < 1"
    )
    invariants_ok = (
        units == orders == sold
        and stock_left + sold == STOCK
        and stock_left >= 0
        and subsidies == spent <= BUDGET_CENTS
        and bad_totals == 0
    )
    burst.report()
    print(
        f"orders {orders} ({units} units; {stock_left} of {STOCK} left), subsidies "
        f"{subsidies} cents of a budget of {BUDGET_CENTS} ({spent} spent)"
    )
    emit(
        {
            "workload": "checkout",
            "backend": server.backend,
            **burst.figures(),
            "orders": orders,
            "stock_left": stock_left,
            "subsidy_cents": subsidies,
            "rounds": ROUNDS,
            "errors": burst.errors,
            "peak_rss_mb": round(rss, 1),
            "invariants_ok": bool(invariants_ok and burst.errors == 0),
        }
    )


if __name__ == "__main__":
    main()

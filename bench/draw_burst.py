"""Lottery draw burst: wrk draws against a 2-process server, compared with GET /api/v1/ping.

Seeds verified members (pre-issued tokens) and a live lottery with enough chances for the
whole run, then runs wrk (64 connections) on the trivial authenticated endpoint and on
draws, each request a draw by the next member: both warmed up, then BENCH_ROUNDS rounds
of ping / draws / ping, each draw run divided by the mean of the two pings around it, and
the median round reported (the machine's spare CPU drifts while a benchmark runs). Checks
afterwards that stock + wins equals the initial stock and that the ledger holds one row
per win.

Environment: BENCH_MEMBERS (20000), BENCH_PRIZES (2000), BENCH_ROUNDS (3), BENCH_ROUND_S
(5 s a run), BENCH_CONNECTIONS (64), GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp
dir). Last line: one JSON object (see bench/README.md).
"""

from __future__ import annotations

import os

from _harness import emit, member_burst
from _seed import LotterySeed, member_server, seed_lottery

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "20000"))
PRIZES = int(os.environ.get("BENCH_PRIZES", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))


def main() -> None:
    server = member_server()
    activity_id, tokens = seed_lottery(
        server, LotterySeed(members=MEMBERS, org_code="BENCH", title="bench", stock=PRIZES)
    )
    try:
        server.start()
        burst = member_burst(
            server,
            tokens,
            name="draws",
            label="lottery draw",
            path=f"/api/v1/activities/{activity_id}/draws",
            body='{"entropy":"b{n}"}',
            rounds=ROUNDS,
            round_s=ROUND_S,
        )
        rss = server.peak_rss_mb()
    finally:
        server.stop()

    def count(sql: str) -> int:
        return int(server.scalar(sql, a=activity_id))

    prize = "FROM activities_lottery_prize WHERE activity_id = :a AND position = 0"
    stock, initial = count(f"SELECT stock {prize}"), count(f"SELECT initial_stock {prize}")
    won = count(
        "SELECT COUNT(*) FROM activities_lottery_draw WHERE activity_id = :a AND outcome = 'won'"
    )
    ledger = count("SELECT COUNT(*) FROM benefits_ledger_entry WHERE activity_id = :a")
    drawn = count("SELECT COUNT(*) FROM activities_lottery_draw WHERE activity_id = :a")
    invariants_ok = stock + won == initial and ledger == won and stock >= 0
    burst.report()
    print(f"draws recorded {drawn}, won {won}, stock left {stock} of {initial}, ledger {ledger}")
    emit(
        {
            "workload": "draw_burst",
            "backend": server.backend,
            **burst.figures(),
            "rounds": ROUNDS,
            "errors": burst.errors,
            "peak_rss_mb": round(rss, 1),
            "invariants_ok": bool(invariants_ok and burst.errors == 0),
        }
    )


if __name__ == "__main__":
    main()

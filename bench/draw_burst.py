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
from pathlib import Path

from _harness import Server, Workload, emit, measure, median_run, wrk
from _seed import LotterySeed, seed_lottery

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "20000"))
PRIZES = int(os.environ.get("BENCH_PRIZES", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
WARM_UP_S = 2
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))


def workloads(base: str, activity_id: int, tokens: Path) -> dict[str, Workload]:
    """Ping and draws, each request by the next member of ``tokens``."""
    return {
        "ping": lambda seconds: wrk(
            "ping (trivial)",
            base + "/api/v1/ping",
            tokens=tokens,
            connections=CONNECTIONS,
            duration_s=seconds,
        ),
        "draw": lambda seconds: wrk(
            "lottery draw",
            f"{base}/api/v1/activities/{activity_id}/draws",
            method="POST",
            headers={"Content-Type": "application/json"},
            body='{"entropy":"b{n}"}',
            tokens=tokens,
            connections=CONNECTIONS,
            duration_s=seconds,
        ),
    }


def main() -> None:
    server = Server(
        workers=2,
        env={
            "GONGHUI_ENV": "test",
            "GONGHUI_DATABASE_URL": os.environ.get("GONGHUI_BENCH_DATABASE_URL", ""),
            "GONGHUI_ACCESS_TOKEN_TTL_S": "7200",
        },
    )
    env, data_dir, base = server.env, server.data_dir, server.url
    backend = "postgresql" if env["GONGHUI_DATABASE_URL"] else "sqlite"
    activity_id, tokens = seed_lottery(
        server, LotterySeed(members=MEMBERS, org_code="BENCH", title="bench", stock=PRIZES)
    )
    try:
        server.start()
        pings, ratios = measure(
            workloads(base, activity_id, tokens),
            rounds=ROUNDS,
            round_s=ROUND_S,
            warm_up_s=WARM_UP_S,
        )
        rss = server.peak_rss_mb()
    finally:
        server.stop()

    from sqlalchemy import create_engine, text

    url = env["GONGHUI_DATABASE_URL"] or f"sqlite:///{data_dir / 'gonghui.db'}"
    engine = create_engine(url)
    with engine.connect() as conn:
        aid = activity_id
        stock, initial = conn.execute(
            text(
                "SELECT stock, initial_stock FROM activities_lottery_prize "
                "WHERE activity_id = :a AND position = 0"
            ),
            {"a": aid},
        ).one()
        won = conn.execute(
            text(
                "SELECT COUNT(*) FROM activities_lottery_draw "
                "WHERE activity_id = :a AND outcome = 'won'"
            ),
            {"a": aid},
        ).scalar_one()
        ledger = conn.execute(
            text("SELECT COUNT(*) FROM benefits_ledger_entry WHERE activity_id = :a"), {"a": aid}
        ).scalar_one()
        drawn = conn.execute(
            text("SELECT COUNT(*) FROM activities_lottery_draw WHERE activity_id = :a"), {"a": aid}
        ).scalar_one()
    engine.dispose()
    invariants_ok = stock + won == initial and ledger == won and stock >= 0
    ratio, draws = median_run(ratios["draw"])
    ping = median_run([(p.requests_per_s, p) for p in pings])[1]
    errors = sum(load.errors for _, load in ratios["draw"])
    print(
        f"{ROUNDS} rounds, {ROUND_S}s a run; ratio = draws/s over the mean of the pings around it"
    )
    print("pings req/s: " + ", ".join(f"{p.requests_per_s:.0f}" for p in pings))
    print(
        "draws req/s: " + ", ".join(f"{d.requests_per_s:.0f} ({r:.3f})" for r, d in ratios["draw"])
    )
    print(f"{'workload':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for row in (ping, draws):
        print(
            f"{row.name:<22}{row.requests_per_s:>10.0f}{row.p50_ms:>10.2f}{row.p99_ms:>10.2f}"
            f"{row.errors:>8.0f}"
        )
    print(f"draws recorded {drawn}, won {won}, stock left {stock} of {initial}, ledger {ledger}")
    emit(
        {
            "workload": "draw_burst",
            "backend": backend,
            "ops_per_s": round(draws.requests_per_s, 1),
            "p50_ms": round(draws.p50_ms, 2),
            "p99_ms": round(draws.p99_ms, 2),
            "ratio_to_trivial": round(ratio, 3),
            "trivial_ops_per_s": round(ping.requests_per_s, 1),
            "rounds": ROUNDS,
            "errors": errors,
            "peak_rss_mb": round(rss, 1),
            "invariants_ok": bool(invariants_ok and errors == 0),
        }
    )


if __name__ == "__main__":
    main()

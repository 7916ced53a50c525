"""Draws served by one host, then two, on PostgreSQL; and by the embedded default (SQLite).

A "host" is one ``gonghui serve`` process group (its API workers and its hot writer) on
its own port and data directory (the same keys); the hosts share one PostgreSQL database
and no lock. PostgreSQL is GONGHUI_BENCH_DATABASE_URL (its public schema is dropped and
recreated) or, when that is empty, a throwaway cluster that ``scripts/pg-throwaway.sh``
starts for the run and removes afterwards. Redis is not used: draws need nothing from it.

Seeds verified members (pre-issued tokens) and a live lottery with a voucher prize whose
stock and budget outlast the run (every winning draw takes the same stock row and budget
row: the hottest rows there are), then, as ``draw_burst`` does, warms up and measures
BENCH_ROUNDS rounds of ping / draws / ping, each draw run divided by the mean of the pings
around it, the median round reported:

1. PostgreSQL, one host: wrk against its port;
2. PostgreSQL, two hosts: the second host started, wrk's two threads each on one host's
   port (a Lua ``setup`` gives each thread its address), the same connections in all;
3. SQLite, one host (``gonghui serve`` as installed, nothing else).

Afterwards, per database: stock + wins = initial stock, stock never negative, one ledger
row per win, budget spent = vouchers issued <= budget, each member's free-chance counter =
their draws (none lost, none taken twice), and at least as many draws recorded as wrk saw
answered (every success durable), with no non-2xx answers.

Environment: BENCH_MEMBERS (5000), BENCH_WORKERS (2 per host), BENCH_ROUNDS (3),
BENCH_ROUND_S (5 s a run), BENCH_CONNECTIONS (64), GONGHUI_BENCH_DATABASE_URL. Last line:
one JSON object (see bench/README.md); ``ratio_to_trivial`` is PostgreSQL's with two hosts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _harness import (
    Load,
    Server,
    Workload,
    cpu_per_request,
    emit,
    measure,
    median_run,
    reset_postgres,
    wrk,
)
from _seed import LotterySeed, seed_lottery

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "5000"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
WARM_UP_S = 2
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
STOCK = 10_000_000
VALUE_CENTS = 100
FREE_DRAWS = 100


# wrk's threads spread over the hosts' ports (MEMBER_TOKENS_LUA's ``setup`` replaced by one
# that also gives each thread its host's address).
SPREAD_LUA = r"""
local ports = {%s}
local setups = 0
function setup(thread)
  thread:set("id", setups)
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[(setups %% #ports) + 1]))[1]
  setups = setups + 1
end
"""


def workloads(hosts: list[Server], activity_id: int, tokens: Path) -> dict[str, Workload]:
    """Ping and draws, each request by the next member of ``tokens``, over ``hosts``."""
    base = hosts[0].url
    lua = SPREAD_LUA % ", ".join(str(host.port) for host in hosts) if len(hosts) > 1 else ""
    return {
        "ping": lambda seconds: wrk(
            "ping (trivial)",
            base + "/api/v1/ping",
            tokens=tokens,
            lua=lua,
            connections=CONNECTIONS,
            duration_s=seconds,
        ),
        "draw": lambda seconds: wrk(
            "lottery draw",
            f"{base}/api/v1/activities/{activity_id}/draws",
            method="POST",
            headers={"Content-Type": "application/json"},
            body='{"entropy":"s{n}"}',
            tokens=tokens,
            lua=lua,
            connections=CONNECTIONS,
            duration_s=seconds,
        ),
    }


def host(database_url: str) -> Server:
    return Server(
        workers=WORKERS,
        env={
            "GONGHUI_ENV": "test",
            "GONGHUI_DATABASE_URL": database_url,
            "GONGHUI_ACCESS_TOKEN_TTL_S": "7200",
        },
    )


def seeded(server: Server) -> tuple[int, Path]:
    """The lottery (voucher stock and budget that outlast the run) and the members' tokens,
    seeded through ``server``'s settings."""
    return seed_lottery(
        server,
        LotterySeed(
            members=MEMBERS,
            org_code="SCALE",
            title="scaleout",
            stock=STOCK,
            value_cents=VALUE_CENTS,
            free_draws_per_day=FREE_DRAWS,
            budget_cents=STOCK * VALUE_CENTS,
        ),
    )


class Phase:
    """One configuration's figures: the median round's draws and ping, and every run."""

    def __init__(self, name: str, pings: list[Load], draws: list[tuple[float, Load]]) -> None:
        self.name = name
        self.pings = pings
        self.runs = draws
        self.ratio, self.draws = median_run(draws)
        self.ping = median_run([(p.requests_per_s, p) for p in pings])[1]
        self.errors = sum(load.errors for _, load in draws)
        # Draws wrk saw answered, warm-up excluded (a lower bound of what must be recorded).
        self.answered = sum(load.requests for _, load in draws)

    def show(self) -> None:
        print(f"-- {self.name}")
        print("pings req/s: " + ", ".join(f"{p.requests_per_s:.0f}" for p in self.pings))
        print(
            "draws req/s: " + ", ".join(f"{d.requests_per_s:.0f} ({r:.3f})" for r, d in self.runs)
        )
        for row in (self.ping, self.draws):
            print(
                f"{row.name:<22}{row.requests_per_s:>10.0f}{row.p50_ms:>10.2f}"
                f"{row.p99_ms:>10.2f}{row.errors:>8.0f}"
            )


def run(hosts: list[Server], activity_id: int, tokens: Path, name: str) -> Phase:
    pings, ratios = measure(
        workloads(hosts, activity_id, tokens), rounds=ROUNDS, round_s=ROUND_S, warm_up_s=WARM_UP_S
    )
    return Phase(name, pings, ratios["draw"])


def invariants(url: str, activity_id: int, answered: int) -> tuple[bool, str]:
    """Whether the database holds what the draws must leave (see the module's docstring)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:

            def one(sql: str) -> Any:
                return conn.execute(text(sql), {"a": activity_id}).one()

            stock, initial = one(
                "SELECT stock, initial_stock FROM activities_lottery_prize "
                "WHERE activity_id = :a AND position = 0"
            )
            drawn, won = one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE outcome = 'won') "
                "FROM activities_lottery_draw WHERE activity_id = :a"
            )
            ledger, issued = one(
                "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM benefits_ledger_entry "
                "WHERE activity_id = :a"
            )
            spent, total = one(
                "SELECT cents_spent, cents_total FROM benefits_budget WHERE activity_id = :a"
            )
            (off,) = one(
                "SELECT COUNT(*) FROM activities_counter c WHERE c.activity_id = :a "
                "AND c.scope LIKE 'free:%' AND c.used <> (SELECT COUNT(*) "
                "FROM activities_lottery_draw d WHERE d.activity_id = c.activity_id "
                "AND d.membership_id = c.membership_id)"
            )
    finally:
        engine.dispose()
    ok = (
        stock >= 0
        and stock + won == initial
        and ledger == won
        and spent == issued <= total
        and off == 0
        and drawn >= answered
    )
    summary = (
        f"draws recorded {drawn} (wrk saw {answered} answered), won {won}, stock "
        f"{initial - stock} taken, ledger {ledger}, budget spent {spent} of {total}, "
        f"members whose chances and draws differ: {off}"
    )
    return ok, summary


def postgres_url() -> tuple[str, Path | None]:
    """GONGHUI_BENCH_DATABASE_URL reset, or a throwaway cluster (and its directory)."""
    url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
    if not url:
        # A directory of its own under the temp dir (the postgres user must reach it).
        cluster = Path(tempfile.mkdtemp(prefix="gonghui-scaleout-pg-"))
        started = subprocess.run(
            [str(ROOT / "scripts" / "pg-throwaway.sh"), "start", str(cluster)],
            capture_output=True,
            text=True,
            check=True,
        )
        return started.stdout.strip().splitlines()[-1], cluster
    reset_postgres(url)
    return url, None


def on_postgres(url: str) -> tuple[Phase, Phase, bool, float]:
    """One host, then two: both phases, the invariants, peak memory of both hosts."""
    first, second = host(url), host(url)
    activity_id, tokens = seeded(first)
    shutil.copytree(first.data_dir / "secrets", second.data_dir / "secrets")
    try:
        first.start()
        one = run([first], activity_id, tokens, "PostgreSQL, one host")
        second.start()
        two = run([first, second], activity_id, tokens, "PostgreSQL, two hosts")
        rss = first.peak_rss_mb() + second.peak_rss_mb()
    finally:
        first.stop()
        second.stop()
    ok, summary = invariants(url, activity_id, one.answered + two.answered)
    print(summary)
    return one, two, ok and one.errors == 0 and two.errors == 0, rss


def on_sqlite() -> tuple[Phase, bool, float]:
    server = host("")
    activity_id, tokens = seeded(server)
    try:
        server.start()
        phase = run([server], activity_id, tokens, "SQLite, one host")
        rss = server.peak_rss_mb()
    finally:
        server.stop()
    ok, summary = invariants(
        f"sqlite:///{server.data_dir / 'gonghui.db'}", activity_id, phase.answered
    )
    print(summary)
    return phase, ok and phase.errors == 0, rss


def main() -> None:
    url, cluster = postgres_url()
    try:
        one, two, pg_ok, pg_rss = on_postgres(url)
    finally:
        if cluster is not None:
            subprocess.run(
                [str(ROOT / "scripts" / "pg-throwaway.sh"), "stop", str(cluster)],
                capture_output=True,
                check=False,
            )
    sqlite, sqlite_ok, sqlite_rss = on_sqlite()
    print(
        f"{ROUNDS} rounds, {ROUND_S}s a run, {CONNECTIONS} connections, {WORKERS} API "
        "workers a host; ratio = draws/s over the mean of the same servers' pings around it"
    )
    print(f"{'':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for phase in (one, two, sqlite):
        phase.show()
    emit(
        {
            "workload": "draw_scaleout",
            "postgresql": "GONGHUI_BENCH_DATABASE_URL" if cluster is None else "throwaway",
            "redis": None,
            "workers_per_host": WORKERS,
            "ops_per_s": round(two.draws.requests_per_s, 1),
            "one_host_ops_per_s": round(one.draws.requests_per_s, 1),
            "two_hosts_ops_per_s": round(two.draws.requests_per_s, 1),
            "sqlite_ops_per_s": round(sqlite.draws.requests_per_s, 1),
            "ratio_to_trivial": round(two.ratio, 3),
            "one_host_ratio_to_trivial": round(one.ratio, 3),
            "sqlite_ratio_to_trivial": round(sqlite.ratio, 3),
            "two_hosts_trivial_ops_per_s": round(two.ping.requests_per_s, 1),
            "p50_ms": round(two.draws.p50_ms, 2),
            "p99_ms": round(two.draws.p99_ms, 2),
            "one_host_p50_ms": round(one.draws.p50_ms, 2),
            "one_host_p99_ms": round(one.draws.p99_ms, 2),
            "sqlite_p50_ms": round(sqlite.draws.p50_ms, 2),
            "sqlite_p99_ms": round(sqlite.draws.p99_ms, 2),
            "rounds": ROUNDS,
            "errors": one.errors + two.errors + sqlite.errors,
            "cpu_us_per_request": {
                key: cpu_per_request(phase.pings, {"draw": phase.runs})
                for key, phase in (("one_host", one), ("two_hosts", two), ("sqlite", sqlite))
            },
            "peak_rss_mb": round(max(pg_rss, sqlite_rss), 1),
            "invariants_ok": pg_ok and sqlite_ok,
        }
    )


if __name__ == "__main__":
    main()

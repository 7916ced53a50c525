"""The opening minute of a voucher grab: wrk claims against a 2-process server, compared with
GET /api/v1/ping, then the time until every claimed coupon is sent.

Seeds verified members with WeChat linked (pre-issued tokens) and a live voucher grab of
one stock large enough for the whole run (each member may claim BENCH_PER_MEMBER times,
so the run's repeats are claims, not refusals). The WeChat Pay simulator runs as a server
of its own (one process holds its state), answering in 100 ms as WeChat Pay documents; the
stock is opened by the workers before the burst. Claims and pings are measured as
in draw_burst (rounds of ping / claims / ping, the median round reported). Then the sends:
the server's two ``gonghui worker`` processes (GONGHUI_WORKER_THREADS each,
BENCH_WORKER_THREADS, 32; the API processes run none, as in production) send every claimed
coupon; the send backlog is polled until empty or BENCH_DRAIN_S. Sends wait while the
claims keep the hot writer busy (gonghui.hotwrite.load), so they run in the ping rounds
between claim rounds: the pings are measured with sends running, the claims mostly
without (read claims/s and the pings' own figures along with the ratio). Invariants: the
stock's count equals the claims, no claim past the stock, each sent claim has its own
coupon, and the backlog drained.

Environment: BENCH_MEMBERS (20000), BENCH_PER_MEMBER (60), BENCH_ROUNDS (3),
BENCH_ROUND_S (5 s a run), BENCH_CONNECTIONS (64), BENCH_DRAIN_S (300),
BENCH_WORKER_THREADS (32), GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir).
Last line: one JSON object (see bench/README.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from _harness import emit, free_port, member_burst
from _seed import LotterySeed, member_server, seed_lottery

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "20000"))
PER_MEMBER = int(os.environ.get("BENCH_PER_MEMBER", "60"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
DRAIN_S = float(os.environ.get("BENCH_DRAIN_S", "300"))
WORKER_THREADS = os.environ.get("BENCH_WORKER_THREADS", "32")
STOCK = 10_000_000
RUNNING_STOCKS = "SELECT COUNT(*) FROM vouchers_stock WHERE activity_id = :a AND status = 'running'"


class Simulator:
    """The WeChat Pay simulator alone, in a uvicorn of its own on the server's settings."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory",
             "gonghui.integrations.wechatpay_simulator:standalone_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
             "--log-level", "warning"],
            env=env,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.post(f"{self.url}/_sim/wechatpay/_control/faults", json={}, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the simulator did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=30)


def _wait(what: str, condition: object, within_s: float) -> float:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > within_s:
            raise RuntimeError(f"not within {within_s}s: {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def main() -> None:
    server = member_server(GONGHUI_WORKER_THREADS=WORKER_THREADS, GONGHUI_TASK_BACKOFF_BASE_S="1")
    simulator = Simulator(server.env)
    server.env["GONGHUI_WECHATPAY_BASE_URL"] = f"{simulator.url}/_sim/wechatpay"
    activity_id, tokens = seed_lottery(
        server,
        LotterySeed(
            members=MEMBERS,
            org_code="BENCH",
            title="bench",
            stock=STOCK,
            value_cents=1000,
            free_draws_per_day=PER_MEMBER,
            kind="voucher_grab",
        ),
    )

    def scalar(sql: str) -> int:
        return int(server.scalar(sql, a=activity_id))

    try:
        server.start()
        stock_id = scalar("SELECT id FROM vouchers_stock WHERE activity_id = :a")
        _wait(
            "the stock opened at WeChat Pay",
            lambda: scalar(RUNNING_STOCKS) == 1,
            60,
        )
        burst = member_burst(
            server,
            tokens,
            name="claims",
            label="voucher claim",
            path=f"/api/v1/activities/{activity_id}/voucher-stocks/{stock_id}/claims",
            rounds=ROUNDS,
            round_s=ROUND_S,
        )
        claimed = scalar("SELECT COUNT(*) FROM vouchers_claim WHERE activity_id = :a")
        backlog_at_end = scalar(
            "SELECT COUNT(*) FROM vouchers_claim WHERE activity_id = :a AND state = 'sending'"
        )
        started = time.monotonic()
        drained = True
        try:
            _wait(
                "every claimed coupon sent",
                lambda: (
                    scalar(
                        "SELECT COUNT(*) FROM vouchers_claim WHERE activity_id = :a "
                        "AND state = 'sending'"
                    )
                    == 0
                ),
                DRAIN_S,
            )
        except RuntimeError:
            drained = False
        drain_s = time.monotonic() - started
        backlog_left = scalar(
            "SELECT COUNT(*) FROM vouchers_claim WHERE activity_id = :a AND state = 'sending'"
        )
        rss = server.peak_rss_mb()
    finally:
        server.stop()
        simulator.stop()

    stock_claimed = scalar("SELECT claimed FROM vouchers_stock WHERE activity_id = :a")
    sent = scalar("SELECT COUNT(*) FROM vouchers_claim WHERE activity_id = :a AND state = 'sent'")
    coupons = scalar(
        "SELECT COUNT(DISTINCT coupon_id) FROM vouchers_claim WHERE activity_id = :a "
        "AND coupon_id IS NOT NULL"
    )
    failed = scalar(
        "SELECT COUNT(*) FROM vouchers_claim WHERE activity_id = :a AND state = 'failed'"
    )
    over = scalar(
        "SELECT COUNT(*) FROM (SELECT membership_id FROM vouchers_claim WHERE activity_id = :a "
        f"GROUP BY membership_id HAVING COUNT(*) > {PER_MEMBER}) AS o"
    )
    sends_per_s = backlog_at_end / drain_s if drained and drain_s > 0 else 0.0
    invariants_ok = (
        stock_claimed == claimed - failed
        and coupons == sent
        and over == 0
        and failed == 0
        and drained
    )
    burst.report()
    print(
        f"claims {claimed} (stock count {stock_claimed}), sent {sent}, failed {failed}; "
        f"backlog {backlog_at_end} when the burst ended, drained in {drain_s:.1f}s "
        f"({sends_per_s:.0f} sends/s), {backlog_left} left"
    )
    emit(
        {
            "workload": "voucher_grab",
            "backend": server.backend,
            **burst.figures(),
            "claims": claimed,
            "backlog_at_end": backlog_at_end,
            "drain_s": round(drain_s, 1),
            "sends_per_s": round(sends_per_s, 1),
            "backlog_left": backlog_left,
            "rounds": ROUNDS,
            "errors": burst.errors,
            "peak_rss_mb": round(rss, 1),
            "invariants_ok": bool(invariants_ok and burst.errors == 0),
        }
    )


if __name__ == "__main__":
    main()

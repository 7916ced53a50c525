"""What the platform costs per request: our authenticated ``GET /api/v1/ping`` against a
bare FastAPI app with one route, both served by uvicorn with the same worker count and
server options, measured in the same run.

Starts ``gonghui serve`` (BENCH_WORKERS processes, 2 by default) on a fresh SQLite data
directory with a platform admin's token, and the bare app (one ``async`` route answering
``{"user_id": 1}``) in a uvicorn process of its own. Both are warmed up, then measured in
BENCH_ROUNDS interleaved rounds (bare, ours, bare, ...); each of our runs is divided by
the mean of the bare runs on either side of it (the machine's spare CPU drifts), and the
median round is reported as ``ratio_to_bare`` (the target is at least 0.5). Environment:
BENCH_WORKERS (2), BENCH_ROUNDS (3), BENCH_ROUND_S (5 s a run), BENCH_CONNECTIONS (64).
Last line: one JSON object.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from _harness import Server, emit, free_port, measure, median_run, staff_token, wrk

WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
WARM_UP_S = 2

# The baseline: FastAPI's least, under the uvicorn options gonghui serve uses.
BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/api/v1/ping")
async def ping() -> dict[str, int]:
    return {"user_id": 1}
"""


class BareServer:
    """The one-route app in a uvicorn of its own (same workers, no access log)."""

    def __init__(self, directory: Path) -> None:
        (directory / "bare_app.py").write_text(BARE_APP)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(WORKERS), "--no-access-log",
             "--log-level", "warning"],
            cwd=directory,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v1/ping", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the bare app did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


def main() -> None:
    server = Server(workers=WORKERS, env={"GONGHUI_ACCESS_TOKEN_TTL_S": "3600"}).start()
    bare: BareServer | None = None
    try:
        staff = {"Authorization": f"Bearer {staff_token(server)}"}
        bare = BareServer(server.data_dir)
        ours_url, bare_url = f"{server.url}/api/v1/ping", f"{bare.url}/api/v1/ping"
        # measure() brackets every run between two runs of "ping": here the bare app's.
        pings, ratios = measure(
            {
                "ping": lambda s: wrk("bare FastAPI, one route", bare_url, duration_s=s),
                "ours": lambda s: wrk(
                    "gonghui ping (authenticated)", ours_url, headers=staff, duration_s=s
                ),
            },
            rounds=ROUNDS,
            round_s=ROUND_S,
            warm_up_s=WARM_UP_S,
        )
        rss = server.peak_rss_mb()
    finally:
        if bare is not None:
            bare.stop()
        server.stop()

    ratio, ours = median_run(ratios["ours"])
    bare_load = median_run([(p.requests_per_s, p) for p in pings])[1]
    print(f"{WORKERS} workers each; {ROUNDS} rounds, {ROUND_S}s a run")
    print("bare req/s: " + ", ".join(f"{p.requests_per_s:.0f}" for p in pings))
    print("ours ratios: " + ", ".join(f"{r:.3f}" for r, _ in ratios["ours"]))
    print(f"{'server':<32}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for load in (bare_load, ours):
        print(
            f"{load.name:<32}{load.requests_per_s:>10.1f}{load.p50_ms:>10.2f}"
            f"{load.p99_ms:>10.2f}{load.errors:>8}"
        )
    every_run = [*pings, *(load for _, load in ratios["ours"])]
    emit(
        {
            "workload": "overhead",
            "ops_per_s": round(ours.requests_per_s, 1),
            "peak_rss_mb": rss,
            "p50_ms": ours.p50_ms,
            "p99_ms": ours.p99_ms,
            "bare_ops_per_s": round(bare_load.requests_per_s, 1),
            "bare_p50_ms": bare_load.p50_ms,
            "bare_p99_ms": bare_load.p99_ms,
            "ratio_to_bare": round(ratio, 3),
            "workers": WORKERS,
            "rounds": ROUNDS,
            "invariants_ok": all(load.errors == 0 for load in every_run),
        }
    )


if __name__ == "__main__":
    main()

"""Console pages: server time of every staff page on the hub benchmark's data set.

Seeds (through ``bench/hub.py --seed``) the demo org tree, 100,000 verified members and 1,000
activities with their participation, signs a platform administrator in to the console (the
form, as a browser does), then requests every console page one after another: a few
warm-up requests, then BENCH_REQUESTS timed ones each. The time is taken by the client on
loopback, so it bounds the server time from above. The bar (issue 19): every page under
300 ms. Pages that list without paging would show here first.

Environment: BENCH_MEMBERS (100000), BENCH_ACTIVITIES (1000), BENCH_REQUESTS (20),
GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir). Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from _harness import GONGHUI, Server, emit, percentile, reset_postgres

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "100000"))
ACTIVITIES = int(os.environ.get("BENCH_ACTIVITIES", "1000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "20"))
WARM_UP = 3
BAR_MS = 300.0
USERNAME, PASSWORD = "bench-console", "bench-console-pass-1"

# Every console page a staff member opens from the menu, and the pages of one activity.
PAGES = [
    "/console/",
    "/console/orgs",
    "/console/roster",
    "/console/reviews",
    "/console/activities",
    "/console/activities?status=live",
    "/console/activities/{activity}",
    "/console/activities/{activity}/stats",
    "/console/risk",
    "/console/judging",
    "/console/questions",
    "/console/merchants",
    "/console/mall",
    "/console/oauth-clients",
    "/console/services",
    "/console/wechat-apps",
    "/console/audit",
    "/console/security",
    "/console/queue",
    "/console/reconciliation",
]


def sign_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, headers={"Origin": base}, timeout=30)
    resp = client.post("/console/login", data={"username": USERNAME, "password": PASSWORD})
    if resp.status_code != 303:
        raise SystemExit(f"console sign-in failed: {resp.status_code} {resp.text[:300]}")
    return client


def time_page(client: httpx.Client, path: str) -> tuple[list[float], int]:
    for _ in range(WARM_UP):
        client.get(path)
    times, bad = [], 0
    for _ in range(REQUESTS):
        started = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        bad += resp.status_code != 200
    return times, bad


def main() -> None:
    db_url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
    backend = "postgresql" if db_url else "sqlite"
    server = Server(workers=1, env={"GONGHUI_DATABASE_URL": db_url})
    if db_url:
        reset_postgres(db_url)
    spec = {
        "members": MEMBERS,
        "activities": ACTIVITIES,
        "tokens": 10,
        "checked": 1,
        "tokens_file": str(server.data_dir / "tokens.txt"),
    }
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("hub.py")), "--seed", json.dumps(spec)],
        env=server.env,
        capture_output=True,
        check=True,
    )
    seed_s = time.monotonic() - started
    subprocess.run(
        [str(GONGHUI), "user", "create-admin", USERNAME],
        env={**server.env, "GONGHUI_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        check=True,
    )
    activity = server.scalar("SELECT max(id) FROM activities_activity")
    title = server.scalar("SELECT title FROM activities_activity WHERE id = :id", id=activity)
    server.start()
    results: dict[str, dict[str, float]] = {}
    bad_total = 0
    try:
        client = sign_in(server.url)
        for page in PAGES:
            path = page.format(activity=activity)
            times, bad = time_page(client, path)
            bad_total += bad
            results[page] = {
                "p50_ms": round(percentile(times, 50), 1),
                "max_ms": round(max(times), 1),
            }
            flag = "" if bad == 0 else f"  ({bad} not 200)"
            print(f"{page:45s} p50 {results[page]['p50_ms']:7.1f} ms  max "
                  f"{results[page]['max_ms']:7.1f} ms{flag}")  # fmt: skip
        # The activity page must show the seeded activity, not a fast error page.
        shows_activity = title in client.get(f"/console/activities/{activity}").text
    finally:
        server.stop()
    slowest = max(results.items(), key=lambda item: item[1]["p50_ms"])
    print(f"seeded {MEMBERS} members, {ACTIVITIES} activities in {seed_s:.0f}s ({backend})")
    print(f"slowest page: {slowest[0]} p50 {slowest[1]['p50_ms']} ms (bar {BAR_MS:.0f} ms)")
    emit(
        {
            "workload": "console",
            "backend": backend,
            "pages": len(PAGES),
            "slowest_page": slowest[0],
            "slowest_p50_ms": slowest[1]["p50_ms"],
            "max_p50_ms_bar": BAR_MS,
            "worst_max_ms": max(r["max_ms"] for r in results.values()),
            "members": MEMBERS,
            "activities": ACTIVITIES,
            "invariants_ok": bad_total == 0 and shows_activity,
        }
    )


if __name__ == "__main__":
    main()

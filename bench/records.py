"""Records API throughput: create, get by id and a filtered list (10 rows) on an indexed
field over 100,000 rows, against the same server's trivial authenticated endpoint.

Starts ``gonghui serve`` on a fresh SQLite data directory (or GONGHUI_BENCH_DATABASE_URL,
an empty PostgreSQL database) and a free port, builds an app and a table over HTTP, loads
the rows with the bulk endpoint, then drives each workload with wrk (64 connections).

The machine is shared, so its spare CPU drifts while a benchmark runs: a ratio of two
figures taken a minute apart measures the drift as much as the server. Hence every
workload is warmed up first (connection pool, thread pool, caches), then measured in
BENCH_ROUNDS rounds of ping / create / ping / get / ping / list / ping, each run divided
by the mean of the two pings on either side of it, and the median ratio over the rounds
reported. Environment: BENCH_ROWS (100000), BENCH_ROUNDS (3), BENCH_ROUND_S (5 s a run),
BENCH_CONNECTIONS (64), GONGHUI_BENCH_DATABASE_URL. Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import time

import httpx

from _harness import (
    Server,
    Workload,
    cpu_per_request,
    emit,
    measure,
    median_run,
    staff_token,
    wrk,
)

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
WARM_UP_S = 2
CATEGORIES = ROWS // 10  # each category holds 10 rows: the filtered list returns 10


def set_up(server: Server) -> tuple[dict[str, str], dict[str, str], float, bool]:
    """An app with an ``items`` table of ROWS rows; returns the staff and app-key headers,
    the load time and whether a filtered count finds exactly 10 rows."""
    staff = {"Authorization": f"Bearer {staff_token(server)}"}
    with httpx.Client(base_url=server.url, timeout=120, headers=staff) as client:
        org = client.post(
            "/api/v1/orgs",
            json={"code": "BENCH", "name": "bench", "level": "province", "parent_id": None},
        ).json()
        app = client.post("/api/v1/baas/apps", json={"org_id": org["id"], "name": "bench"}).json()
        resp = client.post(
            f"/api/v1/baas/apps/{app['id']}/tables",
            json={
                "name": "items",
                "fields": [
                    {"name": "category", "type": "string", "indexed": True},
                    {"name": "n", "type": "integer"},
                    {"name": "title", "type": "string"},
                ],
            },
        )
        assert resp.status_code == 201, resp.text
        key = {"X-Gonghui-App-Key": app["server_key"]}
        started = time.monotonic()
        for start in range(0, ROWS, 1000):
            batch = [
                {"category": f"c{i % CATEGORIES}", "n": i, "title": f"item {i}"}
                for i in range(start, min(start + 1000, ROWS))
            ]
            r = client.post(
                "/api/v1/baas/data/items/records/bulk", json={"records": batch}, headers=key
            )
            assert r.status_code == 201, r.text
        load_s = time.monotonic() - started
        check = client.get(
            "/api/v1/baas/data/items/records",
            params={"where": json.dumps({"category": "c7"}), "limit": 10, "count": "true"},
            headers=key,
        ).json()
    return staff, key, load_s, check["count"] == 10 and len(check["items"]) == 10


def workloads(base: str, staff: dict[str, str], key: dict[str, str]) -> dict[str, Workload]:
    """Each workload as a wrk run of the given duration; ``ping`` is the trivial one."""
    where = "/api/v1/baas/data/items/records?limit=10&where=%7B%22category%22%3A%22c"
    return {
        "ping": lambda s: wrk(
            "ping (trivial, authenticated)", f"{base}/api/v1/ping", headers=staff, duration_s=s
        ),
        "create": lambda s: wrk(
            "create",
            f"{base}/api/v1/baas/data/items/records",
            method="POST",
            headers={**key, "Content-Type": "application/json"},
            body='{"category": "new", "n": 1, "title": "created by wrk"}',
            duration_s=s,
        ),
        "get": lambda s: wrk(
            "get by id",
            f"{base}/",
            headers=key,
            lua="request = function()\n"
            f'  return wrk.format("GET", "/api/v1/baas/data/items/records/" .. '
            f"math.random(1, {ROWS}))\nend\n",
            duration_s=s,
        ),
        "list": lambda s: wrk(
            "filtered list (10 rows)",
            f"{base}/",
            headers=key,
            lua="request = function()\n"
            f'  return wrk.format("GET", "{where}" .. math.random(0, {CATEGORIES - 1})'
            ' .. "%22%7D")\nend\n',
            duration_s=s,
        ),
    }


def main() -> None:
    database_url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
    env = {"GONGHUI_ACCESS_TOKEN_TTL_S": "3600", "GONGHUI_DATABASE_URL": database_url}
    server = Server(env=env).start()
    try:
        staff, key, load_s, found_ten = set_up(server)
        pings, ratios = measure(
            workloads(server.url, staff, key), rounds=ROUNDS, round_s=ROUND_S, warm_up_s=WARM_UP_S
        )
        rss = server.peak_rss_mb()
    finally:
        server.stop()

    print(f"loaded {ROWS} rows in {load_s:.1f}s ({ROWS / load_s:.0f} rows/s, bulk of 1000)")
    print(f"{ROUNDS} rounds, {ROUND_S}s a run; ratio = req/s over the mean of the pings around it")
    print("pings req/s: " + ", ".join(f"{p.requests_per_s:.0f}" for p in pings))
    for name, runs in ratios.items():
        print(f"{name} ratios: " + ", ".join(f"{r:.3f}" for r, _ in runs))
    chosen = {name: median_run(runs) for name, runs in ratios.items()}
    ping = median_run([(p.requests_per_s, p) for p in pings])[1]
    # The median run of each workload, its ratio taken against the pings around it.
    print(f"{'workload':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}{'errors':>8}")
    rows = [(1.0, ping), *chosen.values()]
    for ratio, load in rows:
        print(
            f"{load.name:<28}{load.requests_per_s:>10.1f}{load.p50_ms:>10.2f}"
            f"{load.p99_ms:>10.2f}{ratio:>8.2f}{load.errors:>8}"
        )
    measured = [load for _, load in chosen.values()]
    every_run = [*pings, *(load for runs in ratios.values() for _, load in runs)]
    result_ratios = {name: round(r, 3) for name, (r, _) in chosen.items()}
    emit(
        {
            "workload": "records",
            "backend": "postgresql" if database_url else "sqlite",
            "ops_per_s": round(sum(v.requests_per_s for v in measured) / 3, 1),
            "peak_rss_mb": rss,
            "p50_ms": round(max(v.p50_ms for v in measured), 2),
            "p99_ms": round(max(v.p99_ms for v in measured), 2),
            "create_ratio": result_ratios["create"],
            "get_ratio": result_ratios["get"],
            "list_ratio": result_ratios["list"],
            "ratio_to_trivial": min(result_ratios.values()),
            "ping_rps": round(ping.requests_per_s, 1),
            "rows": ROWS,
            "rounds": ROUNDS,
            "cpu_us_per_request": cpu_per_request(pings, ratios),
            "invariants_ok": found_ten and all(v.errors == 0 for v in every_run),
        }
    )


if __name__ == "__main__":
    main()

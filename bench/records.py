"""Records API throughput: create, get by id and a filtered list (10 rows) on an indexed
field over 100,000 rows, against the same server's trivial authenticated endpoint.

Starts ``gonghui serve`` on a fresh SQLite data directory and a free port, builds an app
and a table over HTTP, loads the rows with the bulk endpoint, then drives each workload
with wrk (64 connections). Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import time

import httpx

from _harness import Load, Server, emit, print_table, staff_token, wrk

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
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


def main() -> None:
    server = Server(env={"GONGHUI_ACCESS_TOKEN_TTL_S": "3600"}).start()
    try:
        staff, key, load_s, found_ten = set_up(server)
        base = server.url
        where = "/api/v1/baas/data/items/records?limit=10&where=%7B%22category%22%3A%22c"
        ping = wrk("ping (trivial, authenticated)", f"{base}/api/v1/ping", headers=staff)
        loads = {
            "create": wrk(
                "create",
                f"{base}/api/v1/baas/data/items/records",
                method="POST",
                headers={**key, "Content-Type": "application/json"},
                body='{"category": "new", "n": 1, "title": "created by wrk"}',
            ),
            "get": wrk(
                "get by id",
                f"{base}/",
                headers=key,
                lua="request = function()\n"
                f'  return wrk.format("GET", "/api/v1/baas/data/items/records/" .. '
                f"math.random(1, {ROWS}))\nend\n",
            ),
            "list": wrk(
                "filtered list (10 rows)",
                f"{base}/",
                headers=key,
                lua="request = function()\n"
                f'  return wrk.format("GET", "{where}" .. math.random(0, {CATEGORIES - 1})'
                ' .. "%22%7D")\nend\n',
            ),
        }
        rss = server.peak_rss_mb()
    finally:
        server.stop()

    print(f"loaded {ROWS} rows in {load_s:.1f}s ({ROWS / load_s:.0f} rows/s, bulk of 1000)")
    print_table([ping, *loads.values()], ping)
    ratios = {k: round(v.requests_per_s / ping.requests_per_s, 3) for k, v in loads.items()}
    measured: list[Load] = list(loads.values())
    emit(
        {
            "workload": "records",
            "ops_per_s": round(sum(v.requests_per_s for v in measured) / 3, 1),
            "peak_rss_mb": rss,
            "p50_ms": round(max(v.p50_ms for v in measured), 2),
            "p99_ms": round(max(v.p99_ms for v in measured), 2),
            "create_ratio": ratios["create"],
            "get_ratio": ratios["get"],
            "list_ratio": ratios["list"],
            "ratio_to_trivial": min(ratios.values()),
            "ping_rps": round(ping.requests_per_s, 1),
            "rows": ROWS,
            "invariants_ok": found_ten and all(v.errors == 0 for v in [ping, *measured]),
        }
    )


if __name__ == "__main__":
    main()

"""Cloud functions: a trivial function invoked over HTTP.

- warm invocations/s under 64 wrk connections, and the ratio to ``GET /api/v1/ping``;
- the latency one sequential client sees for a warm invocation (serial p50/p99);
- the latency of a cold start (a server whose workers are recycled after every run).

Targets (issue 6): ops_per_s >= 300, serial_p50_ms <= 10.
"""

from __future__ import annotations

import time

import httpx

from _harness import Server, emit, percentile, print_table, staff_token, wrk

SOURCE = "def handler(event, context):\n    return {'ok': True, 'echo': event}\n"


def set_up(server: Server) -> tuple[str, str]:
    """An org, an app and the function; returns (staff token, invoke URL with app key)."""
    token = staff_token(server)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
        org = client.post(
            "/api/v1/orgs",
            json={"code": "BENCH", "name": "压测工会", "level": "province", "parent_id": None},
        )
        org.raise_for_status()
        app = client.post("/api/v1/baas/apps", json={"org_id": org.json()["id"], "name": "bench"})
        app.raise_for_status()
        app_id, key = app.json()["id"], app.json()["client_key"]
        client.put(
            f"/api/v1/baas/apps/{app_id}/functions/hello", json={"source": SOURCE}
        ).raise_for_status()
    return token, f"{server.url}/api/v1/baas/apps/{app_id}/functions/hello/invoke|{key}"


def serial_ms(url: str, key: str, count: int) -> list[float]:
    timings = []
    with httpx.Client(headers={"X-Gonghui-App-Key": key}, timeout=30) as client:
        for i in range(count):
            started = time.perf_counter()
            resp = client.post(url, json={"n": i})
            timings.append((time.perf_counter() - started) * 1000)
            resp.raise_for_status()
    return timings


def main() -> None:
    warm = Server(workers=2, env={"GONGHUI_FUNCTIONS_MIN_WORKERS": "2"}).start()
    try:
        token, target = set_up(warm)
        url, key = target.split("|")
        serial_ms(url, key, 50)  # warm the pools of both processes
        trivial = wrk(
            "ping (trivial, authenticated)",
            f"{warm.url}/api/v1/ping",
            headers={"Authorization": f"Bearer {token}"},
        )
        invoke = wrk(
            "invoke (warm)",
            url,
            method="POST",
            headers={"X-Gonghui-App-Key": key, "Content-Type": "application/json"},
            body='{"n": 1}',
        )
        serial = serial_ms(url, key, 300)
        peak = warm.peak_rss_mb()
    finally:
        warm.stop()

    cold_server = Server(
        env={"GONGHUI_FUNCTIONS_MIN_WORKERS": "0", "GONGHUI_FUNCTIONS_RECYCLE_AFTER": "1"}
    ).start()
    try:
        _, target = set_up(cold_server)
        url, key = target.split("|")
        cold = serial_ms(url, key, 40)
    finally:
        cold_server.stop()

    print_table([trivial, invoke], trivial)
    result = {
        "workload": "functions",
        "ops_per_s": round(invoke.requests_per_s, 1),
        "ratio_to_trivial": round(invoke.requests_per_s / trivial.requests_per_s, 3),
        "p50_ms": round(invoke.p50_ms, 2),
        "p99_ms": round(invoke.p99_ms, 2),
        "serial_p50_ms": round(percentile(serial, 50), 2),
        "serial_p99_ms": round(percentile(serial, 99), 2),
        "cold_p50_ms": round(percentile(cold, 50), 2),
        "trivial_ops_per_s": round(trivial.requests_per_s, 1),
        "peak_rss_mb": peak,
        "invariants_ok": invoke.errors == 0 and trivial.errors == 0,
    }
    print(
        f"serial warm p50 {result['serial_p50_ms']} ms, p99 {result['serial_p99_ms']} ms; "
        f"cold start p50 {result['cold_p50_ms']} ms"
    )
    emit(result)


if __name__ == "__main__":
    main()

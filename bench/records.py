"""Records API throughput: create, get by id and a filtered list (10 rows) on an indexed
field over 100,000 rows, against the same server's trivial authenticated endpoint.

Starts ``gonghui serve`` on a fresh SQLite data directory and a free port, builds an app
and a table over HTTP, loads the rows with the bulk endpoint, then drives each workload
with wrk (64 connections). Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
CATEGORIES = ROWS // 10  # each category holds 10 rows: the filtered list returns 10
DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNECTIONS = 64
THREADS = 2
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def lua_script(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.lua"
    path.write_text(body)
    return path


def headers_lua(headers: dict[str, str]) -> str:
    return "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())


def run_wrk(url: str, script: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{DURATION}",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    return {"rps": rps, "p50": pct("50"), "p99": pct("99"), "errors": errors}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="gonghui-bench-records-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GONGHUI_DATA_DIR": str(data_dir),
        "GONGHUI_DATABASE_URL": "",
        "GONGHUI_ENV": "development",
        "GONGHUI_LOG_LEVEL": "WARNING",
        "GONGHUI_PUBLIC_BASE_URL": base,
        "GONGHUI_ACCESS_TOKEN_TTL_S": "3600",
    }
    gonghui = str(VENV_BIN / "gonghui")
    subprocess.run([gonghui, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [gonghui, "user", "create-admin", "bench", "--password", "bench-password-123"],
        env=env,
        check=True,
        capture_output=True,
    )
    log = (data_dir / "server.log").open("wb")
    server = subprocess.Popen(
        [gonghui, "serve", "--port", str(port), "--skip-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_ready(base, server)
        client = httpx.Client(base_url=base, timeout=120, headers={"Connection": "close"})
        token = client.post(
            "/api/v1/auth/password", json={"username": "bench", "password": "bench-password-123"}
        ).json()["access_token"]
        staff = {"Authorization": f"Bearer {token}"}
        org = client.post(
            "/api/v1/orgs",
            json={"code": "BENCH", "name": "bench", "level": "province", "parent_id": None},
            headers=staff,
        ).json()
        app = client.post(
            "/api/v1/baas/apps", json={"org_id": org["id"], "name": "bench"}, headers=staff
        ).json()
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
            headers=staff,
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
        invariants_ok = check["count"] == 10 and len(check["items"]) == 10

        scripts = Path(tempfile.mkdtemp(prefix="wrk-"))
        ping = lua_script(scripts, "ping", headers_lua(staff))
        create = lua_script(
            scripts,
            "create",
            headers_lua({**key, "Content-Type": "application/json"})
            + 'wrk.method = "POST"\n'
            + 'wrk.path = "/api/v1/baas/data/items/records"\n'
            + 'wrk.body = \'{"category": "new", "n": 1, "title": "created by wrk"}\'\n',
        )
        get = lua_script(
            scripts,
            "get",
            headers_lua(key)
            + "request = function()\n"
            + '  return wrk.format("GET", "/api/v1/baas/data/items/records/"'
            + f" .. math.random(1, {ROWS}))\n"
            + "end\n",
        )
        where_prefix = "/api/v1/baas/data/items/records?limit=10&where=%7B%22category%22%3A%22c"
        listing = lua_script(
            scripts,
            "list",
            headers_lua(key)
            + "request = function()\n"
            + f'  return wrk.format("GET", "{where_prefix}"'
            + f' .. math.random(0, {CATEGORIES - 1}) .. "%22%7D")\n'
            + "end\n",
        )
        results = {
            "ping": run_wrk(f"{base}/api/v1/ping", ping),
            "create": run_wrk(f"{base}/api/v1/baas/data/items/records", create),
            "get": run_wrk(f"{base}/", get),
            "list": run_wrk(f"{base}/", listing),
        }
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)

    ping_rps = results["ping"]["rps"]
    print(f"loaded {ROWS} rows in {load_s:.1f}s ({ROWS / load_s:.0f} rows/s, bulk of 1000)")
    print(f"{'workload':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ratio':>8}{'non-2xx':>9}")
    for name, r in results.items():
        print(
            f"{name:<10}{r['rps']:>10.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}"
            f"{r['rps'] / ping_rps:>8.2f}{r['errors']:>9.0f}"
        )
    invariants_ok = invariants_ok and all(r["errors"] == 0 for r in results.values())
    ratios = {k: round(results[k]["rps"] / ping_rps, 3) for k in ("create", "get", "list")}
    worst = min(ratios, key=lambda k: ratios[k])
    summary = {
        "workload": "records",
        "ops_per_s": round(sum(results[k]["rps"] for k in ratios) / 3, 1),
        "peak_rss_mb": round(rss, 1),
        "p50_ms": round(max(results[k]["p50"] for k in ratios), 2),
        "p99_ms": round(max(results[k]["p99"] for k in ratios), 2),
        "create_ratio": ratios["create"],
        "get_ratio": ratios["get"],
        "list_ratio": ratios["list"],
        "ratio_to_trivial": ratios[worst],
        "ping_rps": round(ping_rps, 1),
        "rows": ROWS,
        "invariants_ok": invariants_ok,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""What one ``gonghui worker`` sustains: webhook deliveries per second.

A server with no worker of its own (``GONGHUI_BACKGROUND_WORKERS=false``, as API
processes of a deployment run) stores ``BENCH_EVENTS`` record events, each firing a
webhook trigger to a receiver on loopback, spread over ``BENCH_APPS`` apps (8). Then one
``gonghui worker`` (``BENCH_WORKER_THREADS``, 8) starts; the time from the first
delivery's arrival until the receiver has every event is measured (the worker's start-up,
until its first delivery, is reported apart). Each delivery is a task: claimed by the
relay, carried by the broker (Redis with ``GONGHUI_BENCH_REDIS_URL``, else in-process),
its attempt written, the webhook signed and POSTed.

On the embedded default (SQLite) unless ``GONGHUI_BENCH_DATABASE_URL`` names a PostgreSQL
database (its public schema is dropped first). The last line's JSON carries
``deliveries_per_s``, ``start_up_s`` and ``ratio_to_trivial`` (deliveries/s over the same
server's ping requests/s, measured with wrk just before).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from _harness import GONGHUI, Server, emit, reset_postgres, staff_token, wrk

API = "/api/v1"
EVENTS = int(os.environ.get("BENCH_EVENTS", "2000"))
THREADS = int(os.environ.get("BENCH_WORKER_THREADS", "8"))
# The events are spread over this many apps: a worker runs at most
# GONGHUI_DELIVERY_PER_APP_CONCURRENCY (2) deliveries of one app at once.
APPS = int(os.environ.get("BENCH_APPS", "8"))


class Receiver:
    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.first_at: float | None = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.ids.add(self.headers.get("x-gonghui-event-id", ""))
                    receiver.first_at = receiver.first_at or time.monotonic()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self.lock:
            return len(self.ids)


def main() -> None:
    env = {
        "GONGHUI_BACKGROUND_WORKERS": "false",
        "GONGHUI_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.0/8"]',
    }
    if url := os.environ.get("GONGHUI_BENCH_DATABASE_URL"):
        reset_postgres(url)
        env["GONGHUI_DATABASE_URL"] = url
    if redis_url := os.environ.get("GONGHUI_BENCH_REDIS_URL"):
        env["GONGHUI_REDIS_URL"] = redis_url
    server = Server(env=env).start()
    receiver = Receiver()
    worker: subprocess.Popen[bytes] | None = None
    try:
        ping = wrk("ping", f"{server.url}/api/v1/ping", duration_s=5)
        api = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {staff_token(server)}"},
            timeout=60,
        )
        org = {"code": "QUEUE", "name": "队列压测总工会", "level": "province"}
        org_id = api.post(f"{API}/orgs", json=org).json()["id"]
        keys = []
        for n in range(APPS):
            app = api.post(f"{API}/baas/apps", json={"org_id": org_id, "name": f"队列压测{n}"})
            app = app.json()
            fields = [{"name": "n", "type": "integer"}]
            api.post(
                f"{API}/baas/apps/{app['id']}/tables", json={"name": "events", "fields": fields}
            ).raise_for_status()
            api.post(
                f"{API}/baas/apps/{app['id']}/triggers",
                json={
                    "name": "hook",
                    "event": "record.created",
                    "table_name": "events",
                    "target_kind": "webhook",
                    "webhook_url": receiver.url,
                },
            ).raise_for_status()
            keys.append(app["server_key"])
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for n in range(EVENTS):
                client.post(
                    f"{API}/baas/data/events/records",
                    json={"n": n},
                    headers={"X-Gonghui-App-Key": keys[n % APPS]},
                ).raise_for_status()
        started = time.monotonic()
        worker = subprocess.Popen(
            [str(GONGHUI), "worker", "--threads", str(THREADS)],
            env=server.env,
            start_new_session=True,
        )
        deadline = started + 600
        while receiver.count() < EVENTS and time.monotonic() < deadline:
            time.sleep(0.01)
        ended = time.monotonic()
        assert receiver.first_at is not None
        start_up = receiver.first_at - started
        elapsed = ended - receiver.first_at
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        receiver.http.shutdown()
        server.stop()
    delivered = receiver.count()
    per_s = delivered / elapsed
    print(
        f"one worker ({THREADS} threads, {APPS} apps): first delivery {start_up:.1f} s "
        f"after its start, then {delivered}/{EVENTS} deliveries in {elapsed:.1f} s"
    )
    emit(
        {
            "workload": "task_queue",
            "backend": "postgresql" if "GONGHUI_DATABASE_URL" in env else "sqlite",
            "broker": "redis" if redis_url else "in-process",
            "events": EVENTS,
            "apps": APPS,
            "threads": THREADS,
            "delivered": delivered,
            "start_up_s": round(start_up, 2),
            "seconds": round(elapsed, 2),
            "deliveries_per_s": round(per_s, 1),
            "trivial_rps": round(ping.requests_per_s, 1),
            "ratio_to_trivial": round(per_s / ping.requests_per_s, 4),
            "ok": delivered == EVENTS,
        }
    )


if __name__ == "__main__":
    main()

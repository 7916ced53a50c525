"""Soak: a union's mixed day against one server for SOAK_MINUTES (30), watching its memory.

One ``gonghui serve`` (SOAK_WORKERS processes, 2) on the embedded default (SQLite in a temp
dir), or on GONGHUI_BENCH_DATABASE_URL (its public schema dropped and recreated). Set up
through the public API and the CLI only: a province and two city unions, a roster of
SOAK_MEMBERS people (``gonghui roster import``), a question bank, a quiz that rewards
chances in a lottery, a few more activities for the hub, and an app with an ``orders``
table and two webhook triggers to a receiver this script runs on loopback (paid orders
created, prizes won), whose signatures it checks.

SOAK_CLIENTS processes (4, each ``_soak_day.py``) then share SOAK_RATE requests a second (40),
each a steady stream until the end, of three things chosen at random:

- a member's visit: signs in by SMS code (the development outbox) or refreshes their
  tokens, verifies their membership the first time, reads the hub (and a cursor page),
  one activity, takes the quiz, draws once to three times, looks at their wallet;
- an app's orders: creates a record (half of them paid, which fires a webhook), reads one
  by id, lists a member's orders;
- an app's files: uploads a small text file or image, gets its signed URL, downloads it
  and compares the bytes.

The resident memory of the server's processes is sampled every 30 s (every twelfth of a
short run). Growth = (RSS at the end of the load - RSS after the warm-up, the first 5
minutes or the first sixth of a shorter run) / RSS after the warm-up; under 10 % passes.
Latency p99 per kind is reported over the run and over its first and last windows of the
warm-up's length (drift). 429s and the refusals a real day brings (no chances left, no quiz
attempts left today, a code asked for again too soon) are counted apart from errors (any
other non-2xx, a transport error, a download whose bytes differ). After the load, the
script waits up to SOAK_DRAIN_S (180) for every paid order and every won draw to have
reached the receiver. Last line: one JSON object; ``ok`` when memory, errors and
deliveries all pass. Not part of ``make bench`` without W=soak, nor of CI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from _harness import Server, emit, percentile, reset_postgres, staff_token

MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
RATE = float(os.environ.get("SOAK_RATE", "40"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "4"))
MEMBERS = int(os.environ.get("SOAK_MEMBERS", "2000"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "2"))
DRAIN_S = float(os.environ.get("SOAK_DRAIN_S", "180"))
GROWTH_LIMIT_PCT = 10.0
# A client process (one per SOAK_CLIENTS).
DAY = str(Path(__file__).with_name("_soak_day.py"))
API = "/api/v1"
# Refusals that are part of a real day, not failures (besides every 429).
EXPECTED_CODES = frozenset(
    {
        "lottery.no_chances",
        "quiz.no_attempts_left_today",
        "accounts.otp_resend_cooldown",
        "accounts.otp_phone_throttled",
    }
)


# --- the receiver -------------------------------------------------------------------------


class Receiver:
    """The webhooks' endpoint: ``/orders`` (paid orders created) and ``/prizes`` (prizes
    won). Keeps, per path, the ids the deliveries were about (a record's, a draw's), and
    counts deliveries, repeats of an event id and bad signatures."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.got: dict[str, set[int]] = defaultdict(set)
        self.events: set[str] = set()
        self.deliveries = 0
        self.repeats = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.take(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def take(self, path: str, headers: dict[str, str], body: bytes) -> None:
        # X-Gonghui-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")> (README).
        secret = self.secrets.get(path, "")
        signed = headers.get("x-gonghui-timestamp", "").encode() + b"." + body
        expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        event = json.loads(body)
        about = event["data"]["record"]["id"] if path == "/orders" else event["data"]["draw_id"]
        with self.lock:
            self.deliveries += 1
            if not hmac.compare_digest(expected, headers.get("x-gonghui-signature", "")):
                self.bad_signatures += 1
                return
            event_id = headers.get("x-gonghui-event-id", "")
            self.repeats += event_id in self.events
            self.events.add(event_id)
            self.got[path].add(int(about))

    def missing(self, expected: dict[str, set[int]]) -> int:
        with self.lock:
            return sum(len(ids - self.got[path]) for path, ids in expected.items())

    def stop(self) -> None:
        self.http.shutdown()


# --- set-up, through the API and the CLI ---------------------------------------------------


def _ok(resp: httpx.Response) -> Any:
    if not resp.is_success:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: {resp.text}")
    return resp.json()


def roster(count: int) -> list[dict[str, str]]:
    """People on the roster, each with a distinct phone and a valid ID number."""
    from gonghui.members.idnumber import check_character

    surnames, given = "王李张刘陈杨黄赵吴周徐孙马朱胡郭", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明"
    people = []
    for n in range(count):
        born = date(1975, 1, 1) + timedelta(days=n // 1000)
        first17 = f"440103{born:%Y%m%d}{n % 1000:03d}"
        people.append(
            {
                "name": surnames[n % 16] + given[(n // 16) % 16] + given[(n // 256) % 16],
                "id_number": first17 + check_character(first17),
                "phone": f"139{n:08d}",
                "org": ("SOAK-C1", "SOAK-C2")[n % 2],
            }
        )
    return people


def samples() -> list[dict[str, str]]:
    """Files an app uploads: small UTF-8 texts and PNG images (which get thumbnails), the
    bytes in base64."""
    from PIL import Image

    files = []
    for n in range(3):
        text = (f"第{n}号回执 receipt {n}\n" * (40 * (n + 1))).encode()
        out = io.BytesIO()
        Image.new("RGB", (48 + 16 * n, 48), (40 * n, 120, 200)).save(out, "PNG")
        for name, kind, data in (
            (f"receipt-{n}.txt", "text/plain", text),
            (f"photo-{n}.png", "image/png", out.getvalue()),
        ):
            files.append({"name": name, "type": kind, "data": base64.b64encode(data).decode()})
    return files


def set_up(server: Server, receiver: Receiver) -> dict[str, Any]:
    """Orgs, roster, questions, activities, the app and its triggers; the clients' plan."""
    api = httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {staff_token(server)}"},
        timeout=120,
    )
    with api:
        province = _ok(
            api.post(
                f"{API}/orgs", json={"code": "SOAK", "name": "浸泡测试总工会", "level": "province"}
            )
        )["id"]
        cities = [
            _ok(
                api.post(
                    f"{API}/orgs",
                    json={"code": code, "name": name, "level": "city", "parent_id": province},
                )
            )["id"]
            for code, name in (("SOAK-C1", "甲市总工会"), ("SOAK-C2", "乙市总工会"))
        ]
        people = roster(MEMBERS)
        csv = server.data_dir / "roster.csv"
        csv.write_text(
            "姓名,身份证号,手机号,会员号,工会编码,入会日期\n"
            + "".join(
                f"{p['name']},{p['id_number']},{p['phone']},S{n:06d},{p['org']},2020-03-01\n"
                for n, p in enumerate(people)
            ),
            encoding="utf-8",
        )
        server.run("roster", "import", str(csv), "--org", "SOAK")

        answers = {}
        for n in range(12):
            question = _ok(
                api.post(
                    f"{API}/orgs/{province}/questions",
                    json={
                        "kind": "single",
                        "text": f"工会法第{n + 1}问",
                        "options": ["甲", "乙", "丙", "丁"],
                        "answer": [n % 4],
                    },
                )
            )
            answers[str(question["id"])] = n % 4
        begin = datetime.now(UTC) - timedelta(minutes=1)

        def activity(org_id: int, title: str, config: dict[str, Any], days: int = 0) -> int:
            starts = begin + timedelta(days=days)
            created = _ok(
                api.post(
                    f"{API}/activities",
                    json={
                        "org_id": org_id,
                        "title": title,
                        "starts_at": starts.isoformat(),
                        "ends_at": (starts + timedelta(days=3)).isoformat(),
                        "config": config,
                    },
                )
            )
            _ok(api.post(f"{API}/activities/{created['id']}/publish"))
            return int(created["id"])

        def lottery_rules(free: int) -> dict[str, Any]:
            prizes = [
                {
                    "name": "十元券",
                    "kind": "voucher",
                    "weight": 1,
                    "stock": 10_000_000,
                    "value": 1000,
                },
                {"name": "谢谢参与", "kind": "none", "weight": 3},
            ]
            return {"prizes": prizes, "free_draws_per_day": free, "max_wins_per_member": None}

        lottery = activity(province, "幸运大转盘", {"kind": "lottery", "lottery": lottery_rules(5)})
        reward = {"type": "chances", "chances": 1, "lottery_activity_id": lottery}
        quiz_rules = {"question_count": 5, "time_limit_s": 300, "pass_score": 60,
                      "attempts_per_day": 3, "reward": reward}  # fmt: skip
        quiz = activity(province, "工会知识答题", {"kind": "quiz", "quiz": quiz_rules})
        # More of a month's activities on the hub: live ones in each city, upcoming ones.
        for n, org_id in enumerate(cities * 3):
            config = {"kind": "lottery", "lottery": lottery_rules(1)}
            activity(org_id, f"城市活动{n}", config, days=2 * (n % 3 == 2))

        app = _ok(api.post(f"{API}/baas/apps", json={"org_id": province, "name": "会员商城"}))
        fields = [
            {"name": "member", "type": "string", "indexed": True},
            {"name": "status", "type": "string", "indexed": True},
            {"name": "amount", "type": "integer"},
            {"name": "note", "type": "string"},
        ]
        _ok(
            api.post(
                f"{API}/baas/apps/{app['id']}/tables", json={"name": "orders", "fields": fields}
            )
        )
        for path, spec in (
            ("/orders", {"event": "record.created", "table_name": "orders",
                         "filter": {"status": "paid"}}),
            ("/prizes", {"event": "activity.prize_won"}),
        ):  # fmt: skip
            trigger = _ok(
                api.post(
                    f"{API}/baas/apps/{app['id']}/triggers",
                    json={
                        "name": path.strip("/"),
                        "target_kind": "webhook",
                        "webhook_url": receiver.url + path,
                        "max_attempts": 20,
                        **spec,
                    },
                )
            )
            receiver.secrets[path] = trigger["secret"]
    return {
        "base": server.url,
        "app_key": app["server_key"],
        "lottery": lottery,
        "quiz": quiz,
        "answers": answers,
        "files": samples(),
        "people": people,
    }


# --- the run -------------------------------------------------------------------------------

# A request as a client recorded it: seconds since the start, kind, status (0: no answer),
# milliseconds, error code ("" for a success).
Row = tuple[float, str, int, float, str]


@dataclass(frozen=True)
class Soaked:
    rss: list[tuple[float, float]]  # (seconds since the start, MB) every sample
    rows: list[Row]
    expected: dict[str, set[int]]  # per receiver path, the ids whose webhooks must arrive
    drain_s: float
    peak_rss_mb: float


def soak(server: Server, receiver: Receiver, plan: dict[str, Any], sample_s: float) -> Soaked:
    """The clients' load until the end, memory sampled meanwhile; then the webhooks' drain."""
    plan_path = server.data_dir / "plan.json"
    plan_path.write_text(json.dumps(plan))
    outs = [server.data_dir / f"client-{i}.json" for i in range(CLIENTS)]
    procs = [
        subprocess.Popen([sys.executable, DAY, str(plan_path), str(i), str(out)])
        for i, out in enumerate(outs)
    ]
    try:
        rss: list[tuple[float, float]] = []
        print(f"{'s':>6}{'rss MB':>10}{'webhooks':>10}", flush=True)
        for k in range(int(plan["duration_s"] // sample_s) + 1):
            time.sleep(max(0.0, plan["started"] + k * sample_s - time.time()))
            if any(proc.poll() not in (None, 0) for proc in procs):
                raise RuntimeError("a client failed")
            rss.append((k * sample_s, server.rss_mb()))
            print(f"{k * sample_s:>6.0f}{rss[-1][1]:>10.1f}{receiver.deliveries:>10}", flush=True)
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"a client failed ({proc.returncode})")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    results = [json.loads(out.read_text()) for out in outs]
    expected = {
        "/orders": {i for r in results for i in r["paid"]},
        "/prizes": {i for r in results for i in r["wins"]},
    }
    drained_at = time.monotonic()
    while receiver.missing(expected) and time.monotonic() - drained_at < DRAIN_S:
        time.sleep(1)
    return Soaked(
        rss=rss,
        rows=[
            (t, kind, status, ms, code) for r in results for t, kind, status, ms, code in r["rows"]
        ],
        expected=expected,
        drain_s=time.monotonic() - drained_at,
        peak_rss_mb=server.peak_rss_mb(),
    )


def expected_refusal(status: int, code: str) -> bool:
    return status == 429 or (400 <= status < 500 and code in EXPECTED_CODES)


def is_error(status: int, code: str) -> bool:
    if code == "bytes_differ":
        return True
    return not (200 <= status < 300) and not expected_refusal(status, code)


def p99(rows: list[Row]) -> float | None:
    answered = [ms for _, _, status, ms, _ in rows if status]
    return round(percentile(answered, 99), 1) if answered else None


def latencies(rows: list[Row], duration_s: float, window_s: float) -> dict[str, dict[str, Any]]:
    """Per kind: p99 over the run, over its first and its last ``window_s``; printed with
    the counts of requests, errors and expected refusals."""
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row[1]].append(row)
    print(f"{'kind':<16}{'requests':>9}{'errors':>8}{'refused':>8}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'first':>9}{'last':>9}")  # fmt: skip
    figures = {}
    for kind, of_kind in sorted(by_kind.items()):
        figures[kind] = {
            "p99": p99(of_kind),
            "first": p99([r for r in of_kind if r[0] < window_s]),
            "last": p99([r for r in of_kind if r[0] >= duration_s - window_s]),
        }
        errors = sum(is_error(r[2], r[4]) for r in of_kind)
        refused = sum(expected_refusal(r[2], r[4]) for r in of_kind)
        p50 = percentile([r[3] for r in of_kind], 50)
        print(
            f"{kind:<16}{len(of_kind):>9}{errors:>8}{refused:>8}{p50:>9.1f}"
            + "".join(f"{figures[kind][k] or 0:>9.1f}" for k in ("p99", "first", "last"))
        )
    return figures


def main() -> None:
    duration_s = MINUTES * 60
    warm_up_s = min(300.0, duration_s / 6)
    sample_s = min(30.0, duration_s / 12)
    database_url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
    if database_url:
        reset_postgres(database_url)
    receiver = Receiver()
    server = Server(
        workers=WORKERS,
        env={
            "GONGHUI_DATABASE_URL": database_url,
            # The webhooks' receiver listens on loopback.
            "GONGHUI_OUTBOUND_ALLOW_NETWORKS": '["127.0.0.0/8"]',
            # Every member of the soak asks for codes from this one address.
            "GONGHUI_OTP_MAX_PER_IP_PER_HOUR": "1000000",
        },
    )
    try:
        server.start()
        started = time.monotonic()
        plan = set_up(server, receiver)
        print(
            f"set up in {time.monotonic() - started:.0f}s: {MEMBERS} on the roster, "
            f"{'postgresql' if database_url else 'sqlite'}, {WORKERS} server processes; "
            f"{CLIENTS} clients at {RATE:g} requests/s for {MINUTES:g} min",
            flush=True,
        )
        plan.update(
            {"clients": CLIENTS, "rate": RATE, "duration_s": duration_s, "started": time.time()}
        )
        run = soak(server, receiver, plan, sample_s)
    finally:
        server.stop()
        receiver.stop()

    figures = latencies(run.rows, duration_s, warm_up_s)
    errors = Counter(f"{r[1]} {r[2]} {r[4]}" for r in run.rows if is_error(r[2], r[4]))
    refusals = Counter(r[4] or str(r[2]) for r in run.rows if expected_refusal(r[2], r[4]))
    warm = next(mb for t, mb in run.rss if t >= warm_up_s)
    end = run.rss[-1][1]
    growth = (end - warm) / warm * 100
    expected = sum(len(ids) for ids in run.expected.values())
    received = expected - receiver.missing(run.expected)
    print(f"errors: {dict(errors) or 'none'}; expected refusals: {dict(refusals) or 'none'}")
    print(
        f"rss after the warm-up ({warm_up_s:.0f} s) {warm} MB, at the end {end} MB: "
        f"{growth:+.1f} %; webhooks: {received} of {expected} expected arrived "
        f"({run.drain_s:.0f}s after the load), {receiver.deliveries} deliveries, "
        f"{receiver.repeats} repeated, {receiver.bad_signatures} badly signed"
    )
    memory_ok = growth < GROWTH_LIMIT_PCT
    error_count = sum(errors.values())
    emit(
        {
            "workload": "soak",
            "backend": "postgresql" if database_url else "sqlite",
            "minutes": MINUTES,
            "requests": len(run.rows),
            "ops_per_s": round(len(run.rows) / duration_s, 1),
            "errors": error_count,
            "expected_refusals": sum(refusals.values()),
            "rss_start_mb": warm,
            "rss_end_mb": end,
            "memory_growth_pct": round(growth, 2),
            "memory_ok": memory_ok,
            "peak_rss_mb": run.peak_rss_mb,
            "p99_ms": {kind: f["p99"] for kind, f in figures.items()},
            "p99_first_ms": {kind: f["first"] for kind, f in figures.items()},
            "p99_last_ms": {kind: f["last"] for kind, f in figures.items()},
            "deliveries_expected": expected,
            "deliveries_received": received,
            "deliveries_repeated": receiver.repeats,
            "bad_signatures": receiver.bad_signatures,
            "ok": memory_ok
            and error_count == 0
            and received == expected
            and receiver.bad_signatures == 0,
        }
    )


if __name__ == "__main__":
    main()

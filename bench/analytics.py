"""Org-wide analytics: the aggregation job's run time and the console page's server time
with 100,000 members and 1,000 activities.

Seeds as the hub workload does (its ``seed``, in a child process: the demo org tree,
BENCH_MEMBERS verified members, BENCH_ACTIVITIES activities), then six months of
participation in bulk: each month BENCH_ACTIVE_SHARE of the members draw once in one of
the activities, and a quarter of the draws win a voucher (a ledger row). Then, in another
child process, one full run of the aggregation job and one incremental run (as the
periodic task would), timed. Then a server (no background worker, so no run competes with
the requests) answers, one request at a time, BENCH_REQUESTS requests each of the console
page (signed in through the console's login form) and of the JSON API, for the province
(the whole tree) and for a grassroots union; the figures are the server's answer times on
loopback. Checks that the page shows this month's active members as the participation
rows count them. Target: the page under 300 ms.

Environment: BENCH_MEMBERS (100000), BENCH_ACTIVITIES (1000), BENCH_ACTIVE_SHARE (0.5),
BENCH_REQUESTS (40), GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir).
Last line: one JSON object (see bench/README.md).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gonghui.analytics.aggregate import month_of, month_start
from gonghui.clock import now

from _harness import Server, emit, peak_rss_mb, percentile, reset_postgres, staff_token

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "100000"))
ACTIVITIES = int(os.environ.get("BENCH_ACTIVITIES", "1000"))
ACTIVE_SHARE = float(os.environ.get("BENCH_ACTIVE_SHARE", "0.5"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "40"))
MONTHS = 6
HUB = Path(__file__).with_name("hub.py")


def participate(spec_json: str) -> None:
    """Child process: six months of draws and vouchers won, inserted in bulk."""
    from datetime import timedelta

    from sqlalchemy import insert, select

    from gonghui import clock
    from gonghui.activities.lottery.models import Draw
    from gonghui.activities.models import Activity
    from gonghui.benefits.models import LedgerEntry
    from gonghui.db import unit_of_work
    from gonghui.members.models import Membership

    spec = json.loads(spec_json)
    now = clock.now()
    with unit_of_work(read_only=True) as session:
        members = list(session.scalars(select(Membership.id).order_by(Membership.id)))
        activities = list(
            session.scalars(
                select(Activity.id).where(Activity.status != "draft").order_by(Activity.id)
            )
        )
        # This month's draws only in the activities open now, as members could.
        open_now = list(
            session.scalars(
                select(Activity.id)
                .where(
                    Activity.status != "draft", Activity.starts_at <= now, Activity.ends_at > now
                )
                .order_by(Activity.id)
            )
        )
    step = max(int(1 / spec["share"]), 1)
    draws = 0
    for month in range(MONTHS):
        at = now - timedelta(days=30 * month)
        rows = [
            {
                "activity_id": (open_now if month == 0 else activities)[
                    (i + month) % len(open_now if month == 0 else activities)
                ],
                "membership_id": m,
                "draw_no": 1000 + month,
                "client_entropy": "bench",
                "roll": "0" * 64,
                "picked_position": 0,
                "prize_position": 0 if i % 4 == 0 else None,
                "outcome": "won" if i % 4 == 0 else "lost",
                "at": at,
            }
            for i, m in enumerate(members[month % step :: step])
        ]
        ledger = [
            {
                "membership_id": r["membership_id"],
                "activity_id": r["activity_id"],
                "kind": "voucher",
                "action": "issue",
                "amount": 500,
                "source": "lottery.draw",
                "at": at,
            }
            for r in rows
            if r["outcome"] == "won"
        ]
        with unit_of_work() as session:
            for start in range(0, len(rows), 10000):
                session.execute(insert(Draw), rows[start : start + 10000])
            for start in range(0, len(ledger), 10000):
                session.execute(insert(LedgerEntry), ledger[start : start + 10000])
        draws += len(rows)
    sys.stdout.write(json.dumps({"draws": draws}))


def aggregate_runs() -> None:
    """Child process: a full run, then an incremental one; their seconds and row counts."""
    from gonghui.analytics import aggregate

    started = time.monotonic()
    full = aggregate.recompute(full=True)
    full_s = time.monotonic() - started
    started = time.monotonic()
    incremental = aggregate.recompute()
    incremental_s = time.monotonic() - started
    sys.stdout.write(
        json.dumps(
            {
                "full_s": round(full_s, 2),
                "full_months": len(full.months),
                "incremental_s": round(incremental_s, 2),
                "incremental_months": len(incremental.months),
                "org_month_rows": len(full.org_months),
                "activity_rows": len(full.activities),
            }
        )
    )


def _child(server: Server, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=server.env, capture_output=True, check=False
    )
    if done.returncode:
        sys.stderr.write(done.stderr.decode())
        raise SystemExit(done.returncode)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _timed(client: httpx.Client, path: str, **kwargs: Any) -> tuple[list[float], str]:
    client.get(path, **kwargs).raise_for_status()  # warm
    times, body = [], ""
    for _ in range(REQUESTS):
        started = time.perf_counter()
        resp = client.get(path, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
        body = resp.text
    return times, body


def main() -> None:
    db_url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
    server = Server(
        env={"GONGHUI_DATABASE_URL": db_url, "GONGHUI_BACKGROUND_WORKERS": "false"},
    )
    if db_url:
        reset_postgres(db_url)
    spec = {
        "members": MEMBERS,
        "activities": ACTIVITIES,
        "tokens": 100,
        "checked": 0,
        "tokens_file": str(server.data_dir / "tokens.txt"),
    }
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(HUB), "--seed", json.dumps(spec)],
        env=server.env,
        capture_output=True,
        check=True,
    )
    seeded = _child(server, "--participate", json.dumps({"share": ACTIVE_SHARE}))
    seed_s = time.monotonic() - started
    runs = _child(server, "--aggregate")
    print(f"seeded in {seed_s:.0f} s: {MEMBERS} members, {ACTIVITIES} activities")
    print(f"{seeded['draws']} draws over {MONTHS} months")
    print(
        f"aggregation: full run {runs['full_s']} s ({runs['full_months']} months, "
        f"{runs['org_month_rows']} org-month rows, {runs['activity_rows']} activities), "
        f"incremental run {runs['incremental_s']} s ({runs['incremental_months']} months)"
    )
    province = int(server.scalar("SELECT id FROM orgs_org WHERE parent_id IS NULL"))
    grassroots = int(server.scalar("SELECT max(id) FROM orgs_org WHERE level = 'grassroots'"))
    server.start()
    try:
        token = staff_token(server)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            client.post(
                "/console/login",
                data={"username": "bench-admin", "password": "bench-pass-1"},
                headers={"Origin": server.url},
            )
            figures: dict[str, list[float]] = {}
            bodies: dict[str, str] = {}
            for name, org_id in (("province", province), ("grassroots", grassroots)):
                figures[f"page_{name}"], bodies[name] = _timed(
                    client, "/console/analytics", params={"org_id": org_id}
                )
            api = {"Authorization": f"Bearer {token}"}
            for name, org_id in (("province", province), ("grassroots", grassroots)):
                figures[f"api_{name}"], body = _timed(
                    client, f"/api/v1/analytics/orgs/{org_id}", headers=api
                )
                if name == "province":
                    overview = json.loads(body)
    finally:
        server.stop()
    this_month = overview["monthly"][-1]
    drawing = int(
        server.scalar(
            "SELECT count(DISTINCT membership_id) FROM activities_lottery_draw WHERE at >= :start",
            start=month_start(month_of(now())).replace(tzinfo=None)
            if not db_url
            else month_start(month_of(now())),
        )
    )
    page_ok = f'id="kpi-active">{this_month["active_members"]}<' in bodies["province"]
    invariants_ok = (
        page_ok
        and this_month["verified_members"] == MEMBERS
        and this_month["active_members"] == drawing
    )
    print(f"{'request':<24}{'p50 ms':>10}{'p99 ms':>10}")
    for name, times in figures.items():
        print(f"{name:<24}{percentile(times, 50):>10.1f}{percentile(times, 99):>10.1f}")
    print(
        f"province this month: {this_month['verified_members']} verified, "
        f"{this_month['active_members']} active ({drawing} drawing this month); "
        f"page shows them: {page_ok}"
    )
    emit(
        {
            "workload": "analytics",
            "backend": "postgresql" if db_url else "sqlite",
            "ops_per_s": round(1000 / percentile(figures["page_province"], 50), 1),
            "p50_ms": round(percentile(figures["page_province"], 50), 1),
            "p99_ms": round(percentile(figures["page_province"], 99), 1),
            "api_p50_ms": round(percentile(figures["api_province"], 50), 1),
            "grassroots_page_p50_ms": round(percentile(figures["page_grassroots"], 50), 1),
            "aggregate_full_s": runs["full_s"],
            "aggregate_incremental_s": runs["incremental_s"],
            "target_page_ms": 300,
            "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
            "invariants_ok": invariants_ok,
        }
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--participate":
        participate(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--aggregate":
        aggregate_runs()
    else:
        main()

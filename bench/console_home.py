"""Console home: the dashboard's server time with a large data set.

Seeds what ``hub`` seeds (demo org tree, 100,000 verified members, 1,000 activities, their
counters and today's draws, in bulk; see bench/hub.py), and on top: pending verification
reviews, open risk flags, prizes waiting to be shipped and budgets nearly spent, so that
every figure of the page counts rows. Then one client, one request after the other, reads
``/console/`` as a platform admin (every org: the widest counts) and as a province admin
(the counts scoped by the org tree), and, for comparison, the other new pages: the
roster search, the staff page, the live activities and an activity's prizes. The target:
every page under 300 ms of server time.

Environment: BENCH_MEMBERS (100000), BENCH_ACTIVITIES (1000), BENCH_REQUESTS (50 per page),
GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir; PostgreSQL: its public schema is
dropped and recreated). Last line: one JSON object (see bench/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from _harness import Server, emit, percentile, reset_postgres, staff_token

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "100000"))
ACTIVITIES = int(os.environ.get("BENCH_ACTIVITIES", "1000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "50"))
HUB = Path(__file__).with_name("hub.py")
PROVINCE_ADMIN, PASSWORD = "bench-province", "bench-pass-1"


def seed_queues() -> None:
    """Child process, after the hub's seed: the queues and alerts the home page counts."""
    import secrets

    from sqlalchemy import insert, select

    from gonghui import clock
    from gonghui.accounts.service import create_staff_user
    from gonghui.activities.models import Activity
    from gonghui.benefits.models import Budget, Prize
    from gonghui.db import unit_of_work
    from gonghui.members.models import Membership, VerificationRequest
    from gonghui.orgs import service as orgs
    from gonghui.orgs.models import Org, Role
    from gonghui.risk.models import Flag
    from gonghui.tenancy import SYSTEM

    now = clock.now()
    with unit_of_work() as session:
        root = session.scalar(select(Org).where(Org.parent_id.is_(None)))
        assert root is not None
        staff = create_staff_user(session, username=PROVINCE_ADMIN, password=PASSWORD)
        orgs.grant_role(session, actor=SYSTEM, org_id=root.id, user_id=staff.id, role=Role.ADMIN)
        leaves = session.scalars(select(Org.id).where(Org.depth == 3)).all()
        activities = session.execute(select(Activity.id, Activity.org_id)).all()
        memberships = session.execute(select(Membership.id, Membership.user_id).limit(5000)).all()
        blob = secrets.token_bytes(32)
        session.execute(
            insert(VerificationRequest),
            [
                {
                    "user_id": user_id,
                    "org_id": leaves[n % len(leaves)],
                    "name_hash": blob,
                    "name_enc": blob,
                    "id_number_hash": blob,
                    "id_number_enc": blob,
                    "failure_code": "members.not_in_roster",
                    "status": "pending" if n % 2 else "approved",
                    "created_at": now,
                }
                for n, (_, user_id) in enumerate(memberships[:2000])
            ],
        )
        session.execute(
            insert(Flag),
            [
                {
                    "org_id": org_id,
                    "activity_id": activity_id,
                    "kind": "network_accounts",
                    "subject": f"net:{n}",
                    "dedupe": f"bench:{n}",
                    "status": "open" if n % 3 else "dismissed",
                    "evidence": {},
                    "raised_at": now,
                }
                for n, (activity_id, org_id) in enumerate(activities[:600])
            ],
        )
        session.execute(
            insert(Prize),
            [
                {
                    "membership_id": membership_id,
                    "activity_id": activities[n % len(activities)][0],
                    "name": "电饭煲",
                    "status": ("to_ship", "shipped", "awaiting_address")[n % 3],
                    "won_at": now,
                }
                for n, (membership_id, _) in enumerate(memberships)
            ],
        )
        session.execute(
            insert(Budget),
            [
                {
                    "activity_id": activity_id,
                    "cents_total": 100_000,
                    "cents_spent": 95_000 if n % 10 == 0 else 10_000,
                    "points_total": None,
                    "points_spent": 0,
                }
                for n, (activity_id, _) in enumerate(activities)
            ],
        )


def timed(client: httpx.Client, path: str) -> list[float]:
    for _ in range(5):  # warm up
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, (path, resp.status_code)
    return times


def main() -> None:
    db_url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
    backend = "postgresql" if db_url else "sqlite"
    server = Server(workers=1, env={"GONGHUI_DATABASE_URL": db_url})
    if db_url:
        reset_postgres(db_url)
    spec = {
        "members": MEMBERS,
        "activities": ACTIVITIES,
        "tokens": 2000,
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
    subprocess.run([sys.executable, __file__, "--seed"], env=server.env, check=True)
    seed_s = time.monotonic() - started
    server.start()
    results: dict[str, dict[str, float]] = {}
    try:
        admin = staff_token(server)
        province = httpx.post(
            f"{server.url}/api/v1/auth/password",
            json={"username": PROVINCE_ADMIN, "password": PASSWORD},
        ).json()["access_token"]
        activity_id = server.scalar("SELECT min(activity_id) FROM benefits_prize")
        pages = {
            "home (platform admin)": (admin, "/console/"),
            "home (province admin)": (province, "/console/"),
            "roster search by ID number": (
                province,
                "/console/roster/entries?id_number=440101190401010423",
            ),
            "roster first page": (province, "/console/roster/entries"),
            "staff": (province, "/console/staff"),
            "live activities": (province, "/console/activities?live=1"),
            "an activity's prizes": (province, f"/console/activities/{activity_id}/prizes"),
        }
        for name, (token, path) in pages.items():
            with httpx.Client(base_url=server.url, cookies={"gh_at": token}) as client:
                times = timed(client, path)
            results[name] = {
                "p50_ms": round(percentile(times, 50), 1),
                "p99_ms": round(percentile(times, 99), 1),
                "max_ms": round(max(times), 1),
            }
        rss = server.peak_rss_mb()
    finally:
        server.stop()
    print(f"seeded {MEMBERS} members, {ACTIVITIES} activities in {seed_s:.0f}s ({backend})")
    print(f"{'page':28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, figures in results.items():
        print(
            f"{name:28} {figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} {figures['max_ms']:8.1f}"
        )
    home = results["home (province admin)"]
    emit(
        {
            "workload": "console_home",
            "backend": backend,
            "ops_per_s": round(1000 / home["p50_ms"], 1),
            "peak_rss_mb": rss,
            "p50_ms": home["p50_ms"],
            "p99_ms": home["p99_ms"],
            "pages": results,
            "members": MEMBERS,
            "activities": ACTIVITIES,
            "invariants_ok": all(f["p99_ms"] < 300 for f in results.values()),
        }
    )


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--seed":
        seed_queues()
    else:
        main()

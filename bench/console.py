"""Console pages: server time of every staff page on the hub benchmark's data set.

Seeds (through ``bench/hub.py --seed``) the demo org tree, 100,000 verified members and 1,000
activities with their participation, and on top the queues and alerts the home page counts
(pending verification reviews, open risk flags, prizes to ship, budgets nearly spent).
Then one client, one request after the other, reads every console page of the menu and
one activity's pages as a province administrator (the counts scoped by the org tree, the
widest a union's staff sees), and the home page as the platform administrator signed in
through the console's form: a few warm-up requests, then BENCH_REQUESTS timed ones each.
The time is taken by the client on loopback, so it bounds the server time from above. The
bar (issue 19): every page under 300 ms. Pages that list without paging show here first.

Environment: BENCH_MEMBERS (100000), BENCH_ACTIVITIES (1000), BENCH_REQUESTS (20),
GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir). Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import re
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
PROVINCE_ADMIN = "bench-province"

# The pages of the menu are the sidebar's links as each staff member is shown them (the
# sections their roles open, console/nav.py), so that a new section is timed here without
# being listed. Besides them: searches and filters of those pages, one activity's pages,
# and pages reached from others rather than from the menu.
MORE_PAGES = [
    "/console/roster/entries?id_number=440101190401010423",
    "/console/roster/entries?name=会员77777",
    "/console/membership-requests",
    "/console/activities?status=live",
    "/console/activities/{activity}",
    "/console/activities/{activity}/stats",
    "/console/activities/{activity}/prizes",
    "/console/activities?live=1",
    "/console/services",
    "/console/wechat-apps",
]
_SIDEBAR = re.compile(r'<nav class="sidebar"[^>]*>(.*?)</nav>', re.S)


def menu(client: httpx.Client) -> list[str]:
    """The addresses of the sidebar a signed-in staff member's home page shows."""
    sidebar = _SIDEBAR.search(client.get("/console/").text)
    if sidebar is None:
        raise SystemExit("the console's home page shows no sidebar")
    return re.findall(r'<a href="([^"]+)"', sidebar.group(1))


def seed_queues() -> None:
    """Child process, after the hub's seed: the queues and alerts the home page counts."""
    from sqlalchemy import insert, select

    from gonghui import clock
    from gonghui.accounts.service import create_staff_user
    from gonghui.activities.models import Activity
    from gonghui.benefits.models import Budget, Prize
    from gonghui.db import unit_of_work
    from gonghui.members.models import Membership, VerificationRequest
    from gonghui.orgs import service as orgs
    from gonghui.orgs.models import Org, Role
    from gonghui.pii import BulkSealer, PiiField
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
        sealer = BulkSealer.from_settings()
        name, number = "张三", "440101199001010011"
        sealed = {
            "name_hash": sealer.blind_index(PiiField.NAME, name),
            "name_enc": sealer.seal(PiiField.NAME, name),
            "id_number_hash": sealer.blind_index(PiiField.ID_NUMBER, number),
            "id_number_enc": sealer.seal(PiiField.ID_NUMBER, number),
        }
        session.execute(
            insert(VerificationRequest),
            [
                {
                    "user_id": user_id,
                    "org_id": leaves[n % len(leaves)],
                    **sealed,
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


def sign_in(base: str, username: str) -> httpx.Client:
    """A console session, signed in through the form as a browser is."""
    client = httpx.Client(base_url=base, headers={"Origin": base}, timeout=30)
    resp = client.post("/console/login", data={"username": username, "password": PASSWORD})
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
        "tokens": 2000,
        "checked": 0,
        "tokens_file": str(server.data_dir / "tokens.txt"),
    }
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("hub.py")), "--seed", json.dumps(spec)],
        env=server.env,
        capture_output=True,
        check=True,
    )
    subprocess.run([sys.executable, __file__, "--seed"], env=server.env, check=True)
    seed_s = time.monotonic() - started
    subprocess.run(
        [str(GONGHUI), "user", "create-admin", USERNAME],
        env={**server.env, "GONGHUI_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        check=True,
    )
    activity = server.scalar("SELECT min(activity_id) FROM benefits_prize")
    title = server.scalar("SELECT title FROM activities_activity WHERE id = :id", id=activity)
    server.start()
    results: dict[str, dict[str, float]] = {}
    bad_total = 0
    try:
        admin, province = sign_in(server.url, USERNAME), sign_in(server.url, PROVINCE_ADMIN)
        province_menu = menu(province)
        # The platform operator's own sections (the queue, reconciliation), and the home
        # page with every org's counts.
        admin_pages = ["/console/"] + [p for p in menu(admin) if p not in province_menu]
        pages = [(f"{page} (platform admin)", admin, page) for page in admin_pages]
        pages += [
            (page, province, page.format(activity=activity)) for page in province_menu + MORE_PAGES
        ]
        for name, client, path in pages:
            times, bad = time_page(client, path)
            bad_total += bad
            results[name] = {
                "p50_ms": round(percentile(times, 50), 1),
                "p99_ms": round(percentile(times, 99), 1),
                "max_ms": round(max(times), 1),
            }
            flag = "" if bad == 0 else f"  ({bad} not 200)"
            figures = results[name]
            print(f"{name:52s} p50 {figures['p50_ms']:7.1f}  p99 {figures['p99_ms']:7.1f}  "
                  f"max {figures['max_ms']:7.1f} ms{flag}")  # fmt: skip
        # The activity page must show the seeded activity, not a fast error page.
        shows_activity = title in province.get(f"/console/activities/{activity}").text
        rss = server.peak_rss_mb()
    finally:
        server.stop()
    slowest = max(results.items(), key=lambda item: item[1]["p50_ms"])
    print(f"seeded {MEMBERS} members, {ACTIVITIES} activities in {seed_s:.0f}s ({backend})")
    print(f"slowest page: {slowest[0]} p50 {slowest[1]['p50_ms']} ms (bar {BAR_MS:.0f} ms)")
    home = results["/console/"]
    emit(
        {
            "workload": "console",
            "backend": backend,
            "ops_per_s": round(1000 / home["p50_ms"], 1),
            "peak_rss_mb": rss,
            "p50_ms": home["p50_ms"],
            "p99_ms": home["p99_ms"],
            "pages": len(results),
            "slowest_page": slowest[0],
            "slowest_p50_ms": slowest[1]["p50_ms"],
            "worst_p99_ms": max(r["p99_ms"] for r in results.values()),
            "bar_ms": BAR_MS,
            "members": MEMBERS,
            "activities": ACTIVITIES,
            "invariants_ok": bad_total == 0 and shows_activity,
        }
    )


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--seed":
        seed_queues()
    else:
        main()

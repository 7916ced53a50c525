"""Member hub: a member's listing of live and upcoming activities, with their own state.

Seeds (bulk inserts in a child process) the demo org tree, 100,000 verified members spread
over it and 1,000 activities across the tree in mixed kinds and states (live, upcoming;
drafts, paused and ended ones that must not show), plus participation (chances used and
earned, quiz attempts, prizes won) for the members whose tokens wrk uses. Then measures with
wrk (64 connections, each request by the next member) the trivial authenticated endpoint,
the hub's first page and a cursor page, and one sequential client. Checks that the hub
returns exactly the expected activities and state for a few members. The wrk runs are
warmed up, then measured in BENCH_ROUNDS rounds in which each page runs between two pings
(its ratio taken against their mean, the median round reported), as the machine's spare
CPU drifts while a benchmark runs.

Environment: BENCH_MEMBERS (100000), BENCH_ACTIVITIES (1000), BENCH_TOKENS (20000),
BENCH_SERIAL (2000), BENCH_ROUNDS (3), BENCH_ROUND_S (5 s a run), BENCH_CONNECTIONS (64),
BENCH_WORKERS (2),
GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir; PostgreSQL: its public schema is
dropped and recreated). Last line: one JSON object (see bench/README.md).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from _harness import (
    Load,
    Server,
    cpu_per_request,
    emit,
    measure,
    median_run,
    percentile,
    print_table,
    reset_postgres,
    wrk,
)

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "100000"))
ACTIVITIES = int(os.environ.get("BENCH_ACTIVITIES", "1000"))
TOKENS = int(os.environ.get("BENCH_TOKENS", "20000"))
SERIAL = int(os.environ.get("BENCH_SERIAL", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
WARM_UP_S = 2
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PAGE = 20
CHECKED = 5  # members whose whole hub is compared with what the seed expects
TAG = "劳模"


def _activity_plan(n: int, orgs: list[int]) -> dict[str, Any]:
    """The n-th activity: its org, kind, state and rules, spread evenly over the tree."""
    kind = ("lottery", "quiz", "quiz_lottery")[n % 3]
    # 6 in 10 show (live or upcoming); draft, paused, ended and past-their-window do not.
    state = ("live", "live", "live", "upcoming", "upcoming", "live", "draft", "paused", "ended",
             "over")[n % 10]  # fmt: skip
    return {
        "org_id": orgs[n % len(orgs)],
        "kind": kind,
        "state": state,
        "free_draws": 1 + n % 3,
        "min_days": 365 if n % 7 == 0 else 0,
        "tags": [TAG] if n % 11 == 0 else [],
    }


def _config(kind: str, free_draws: int) -> dict[str, Any]:
    quiz = {"question_count": 5, "time_limit_s": 120, "pass_score": 60, "attempts_per_day": 3}
    lottery = {
        "prizes": [
            {"name": "十元券", "kind": "voucher", "weight": 1, "stock": 100, "value": 1000},
            {"name": "谢谢参与", "kind": "none", "weight": 3},
        ],
        "free_draws_per_day": free_draws,
    }
    if kind == "quiz":
        return {"kind": kind, "quiz": quiz}
    if kind == "lottery":
        return {"kind": kind, "lottery": lottery}
    return {"kind": kind, "quiz": quiz, "lottery": lottery}


def seed(spec_json: str) -> None:
    """Child process: everything inserted in bulk; prints the expectations as JSON."""
    import secrets

    from sqlalchemy import insert, select

    from gonghui import clock
    from gonghui.accounts.models import AuthSession, User
    from gonghui.accounts.tokens import access_token_for
    from gonghui.activities.lottery.models import Draw
    from gonghui.activities.models import Activity, Counter
    from gonghui.activities.schemas import ActivityCreate
    from gonghui.db import unit_of_work
    from gonghui.demo import seed_orgs_and_staff
    from gonghui.members.idnumber import check_character
    from gonghui.members.models import Membership, RosterEntry
    from gonghui.migrations import upgrade
    from gonghui.orgs.models import Org, OrgLevel
    from gonghui.pii import BulkSealer, PiiField

    spec = json.loads(spec_json)
    upgrade()
    sealer = BulkSealer.from_settings()
    now = clock.now()
    today = clock.local_day()
    with unit_of_work() as session:
        seed_orgs_and_staff(session)
    with unit_of_work() as session:
        tree = {o.id: (o.path, o.level, o.name) for o in session.scalars(select(Org))}
    all_orgs = sorted(tree)
    leaves = [i for i in all_orgs if tree[i][1] == OrgLevel.GRASSROOTS]
    # Most members belong to grassroots unions, some directly to a district or a city.
    member_orgs = leaves * 4 + [i for i in all_orgs if tree[i][1] != OrgLevel.PROVINCE]

    def chain(org_id: int) -> list[int]:
        return [int(p) for p in tree[org_id][0].strip("/").split("/")]

    # Activities: validated by the API's own schema, inserted in one statement.
    plans = [_activity_plan(n, all_orgs) for n in range(spec["activities"])]
    rows = []
    for n, plan in enumerate(plans):
        offset = timedelta(minutes=n)
        starts, ends = {
            "live": (now - timedelta(days=3) + offset, now + timedelta(days=20)),
            "upcoming": (now + timedelta(days=2) + offset, now + timedelta(days=30)),
            "draft": (now - timedelta(days=1) + offset, now + timedelta(days=20)),
            "paused": (now - timedelta(days=1) + offset, now + timedelta(days=20)),
            "ended": (now - timedelta(days=5) + offset, now - timedelta(days=1)),
            "over": (now - timedelta(days=40) + offset, now - timedelta(days=10)),
        }[plan["state"]]
        data = ActivityCreate.model_validate(
            {
                "org_id": plan["org_id"],
                "title": f"{tree[plan['org_id']][2]}{n}号活动",
                "starts_at": starts,
                "ends_at": ends,
                "config": _config(plan["kind"], plan["free_draws"]),
                "eligibility": {"min_membership_days": plan["min_days"], "tags_any": plan["tags"]},
            }
        )
        status = {"draft": "draft", "paused": "paused", "ended": "ended"}.get(
            plan["state"], "live" if plan["state"] == "live" and n % 2 else "scheduled"
        )
        rows.append(
            {
                **data.model_dump(
                    mode="python", include={"org_id", "title", "starts_at", "ends_at"}
                ),
                "kind": plan["kind"],
                "description": "",
                "status": status,
                "config": data.config.model_dump(mode="json"),
                "eligibility": data.eligibility.model_dump(mode="json"),
                "seed_commitment": secrets.token_hex(32) if status != "draft" else None,
                "created_at": now,
                "updated_at": now,
                "published_at": None if status == "draft" else now,
                "ended_at": ends if status == "ended" else None,
            }
        )
        plan["starts_at"] = starts
    with unit_of_work() as session:
        ids = session.scalars(
            insert(Activity).returning(Activity.id, sort_by_parameter_order=True), rows
        ).all()
    for plan, activity_id in zip(plans, ids, strict=True):
        plan["id"] = activity_id
    visible_by_org: dict[int, list[dict[str, Any]]] = {}
    for plan in plans:
        if plan["state"] in ("live", "upcoming"):
            visible_by_org.setdefault(plan["org_id"], []).append(plan)

    # Members: user, roster entry, membership; a sign-in session for every token holder.
    token_every = max(spec["members"] // spec["tokens"], 1)
    tokens: list[str] = []
    holders: list[tuple[int, int, date, bool]] = []  # membership, org, joined, tagged
    batch = 5000
    for start in range(0, spec["members"], batch):
        numbers = range(start, min(start + batch, spec["members"]))
        orgs_of = {n: member_orgs[n % len(member_orgs)] for n in numbers}
        joined = {n: today - timedelta(days=30 + (n * 37) % 2000) for n in numbers}
        with unit_of_work() as session:
            user_ids = session.scalars(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                [{"display_name": f"m{n}", "created_at": now} for n in numbers],
            ).all()
            entries = []
            for n in numbers:
                first17 = f"440101{1900 + n // 1000:04d}0101{n % 1000:03d}"
                number = first17 + check_character(first17)
                name = f"会员{n}"
                entries.append(
                    {
                        "org_id": orgs_of[n],
                        "id_number_hash": sealer.blind_index(PiiField.ID_NUMBER, number),
                        "id_number_enc": sealer.seal(PiiField.ID_NUMBER, number),
                        "name_hash": sealer.blind_index(PiiField.NAME, name),
                        "name_enc": sealer.seal(PiiField.NAME, name),
                        "join_date": joined[n],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            entry_ids = session.scalars(
                insert(RosterEntry).returning(RosterEntry.id, sort_by_parameter_order=True),
                entries,
            ).all()
            membership_ids = session.scalars(
                insert(Membership).returning(Membership.id, sort_by_parameter_order=True),
                [
                    {
                        "user_id": user_id,
                        "roster_entry_id": entry_id,
                        "org_id": orgs_of[n],
                        "status": "verified",
                        "verified_via": "roster",
                        "tags": [TAG] if n % 3 == 0 else [],
                        "verified_at": now,
                    }
                    for n, user_id, entry_id in zip(numbers, user_ids, entry_ids, strict=True)
                ],
            ).all()
            sessions = []
            for n, user_id, membership_id in zip(numbers, user_ids, membership_ids, strict=True):
                if n % token_every or len(tokens) >= spec["tokens"]:
                    continue
                sid = secrets.token_hex(16)
                sessions.append({"id": sid, "user_id": user_id, "channel": "h5", "created_at": now})
                holders.append((membership_id, orgs_of[n], joined[n], n % 3 == 0))
            if sessions:
                session.execute(insert(AuthSession), sessions)
                # Tokens as sign-in issues them: carrying their principal.
                tokens.extend(
                    access_token_for(session, user_id=s["user_id"], session_id=s["id"])
                    for s in sessions
                )
    Path(spec["tokens_file"]).write_text("\n".join(tokens) + "\n")

    # Participation of the token holders in some of the activities they see: free draws
    # used today, chances earned by a quiz, quiz attempts, and prizes won.
    free_scope, counters, draws = f"free:{today.isoformat()}", [], []
    expected = []
    for h, (membership_id, org_id, joined_on, tagged) in enumerate(holders):
        seen = sorted(
            (p for o in chain(org_id) for p in visible_by_org.get(o, [])),
            key=lambda p: (p["starts_at"], p["id"]),
        )
        state: dict[int, dict[str, Any]] = {}
        for k, plan in enumerate(seen[h % 3 :: 4]):
            lottery = plan["kind"] != "quiz"
            used = 1 + k % plan["free_draws"] if lottery else 0
            earned = 2 if plan["kind"] == "quiz_lottery" else 0
            won = 1 if lottery and k % 2 == 0 else 0
            if lottery:
                counters.append((plan["id"], membership_id, free_scope, used, plan["free_draws"]))
            if earned:
                counters.append((plan["id"], membership_id, "earned", 1, earned))
            if plan["kind"] != "lottery":
                scope = f"attempts:{today.isoformat()}"
                counters.append((plan["id"], membership_id, scope, 1, 3))
            for d in range(won):
                draws.append((plan["id"], membership_id, d + 1))
            state[plan["id"]] = {
                "joined": True,
                "chances_left": plan["free_draws"] - used + max(earned - 1, 0) if lottery else None,
                "prizes_won": won,
            }
        if h < spec["checked"]:
            days = (today - joined_on).days
            expected.append(
                [
                    {
                        "id": p["id"],
                        "eligible": days >= p["min_days"] and (not p["tags"] or tagged),
                        "me": state.get(
                            p["id"],
                            {
                                "joined": False,
                                "chances_left": p["free_draws"] if p["kind"] != "quiz" else None,
                                "prizes_won": 0,
                            },
                        ),
                    }
                    for p in seen
                ]
            )
    with unit_of_work() as session:
        for start in range(0, len(counters), 10000):
            session.execute(
                insert(Counter),
                [
                    {"activity_id": a, "membership_id": m, "scope": s, "used": u, "granted": g}
                    for a, m, s, u, g in counters[start : start + 10000]
                ],
            )
        if draws:
            session.execute(
                insert(Draw),
                [
                    {
                        "activity_id": a,
                        "membership_id": m,
                        "draw_no": d,
                        "client_entropy": "seed",
                        "roll": "0" * 64,
                        "picked_position": 0,
                        "prize_position": 0,
                        "outcome": "won",
                        "at": now,
                    }
                    for a, m, d in draws
                ],
            )
    sys.stdout.write(
        json.dumps({"expected": expected, "counters": len(counters), "draws": len(draws)})
    )


def hub_pages(base: str, token: str) -> list[dict[str, Any]]:
    """Every page of one member's hub."""
    items: list[dict[str, Any]] = []
    cursor = None
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            params: dict[str, Any] = {"limit": PAGE, **({"cursor": cursor} if cursor else {})}
            resp = client.get("/api/v1/hub", params=params)
            resp.raise_for_status()
            page = resp.json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def serial(port: int, path: str, tokens: list[str]) -> tuple[list[float], int]:
    """One client, one request after the other (keep-alive), each by the next member."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    times, bad = [], 0
    for i in range(SERIAL):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"})
        resp = conn.getresponse()
        resp.read()
        times.append((time.perf_counter() - started) * 1000)
        bad += resp.status != 200
    conn.close()
    return times, bad


def main() -> None:
    db_url = os.environ.get("GONGHUI_BENCH_DATABASE_URL", "")
    backend = "postgresql" if db_url else "sqlite"
    server = Server(
        workers=WORKERS,
        env={"GONGHUI_DATABASE_URL": db_url, "GONGHUI_ACCESS_TOKEN_TTL_S": "7200"},
    )
    if db_url:
        reset_postgres(db_url)
    tokens_file = server.data_dir / "tokens.txt"
    spec = {
        "members": MEMBERS,
        "activities": ACTIVITIES,
        "tokens": TOKENS,
        "checked": CHECKED,
        "tokens_file": str(tokens_file),
    }
    started = time.monotonic()
    seeded = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--seed", json.dumps(spec)],
            env=server.env,
            capture_output=True,
            check=True,
        ).stdout
    )
    seed_s = time.monotonic() - started
    tokens = tokens_file.read_text().split()
    server.start()
    try:
        base = server.url
        # Correctness first: whole hubs of a few members against the seed's expectations.
        found = [hub_pages(base, tokens[i]) for i in range(CHECKED)]
        hubs_ok = all(
            [{"id": i["id"], "eligible": i["eligible"], "me": i["me"]} for i in got] == want
            for got, want in zip(found, seeded["expected"], strict=True)
        )
        first = httpx.get(
            f"{base}/api/v1/hub",
            params={"limit": PAGE},
            headers={"Authorization": f"Bearer {tokens[0]}"},
        ).json()
        # A cursor names a place in the time-ordered list, valid for every member.
        cursor_path = f"/api/v1/hub?limit={PAGE}&cursor={first['next_cursor']}"
        pings, ratios = measure(
            {
                "ping": lambda s: wrk(
                    "ping (trivial, authenticated)",
                    f"{base}/api/v1/ping",
                    tokens=tokens_file,
                    duration_s=s,
                ),
                "hub": lambda s: wrk(
                    f"hub first page ({PAGE})",
                    f"{base}/api/v1/hub?limit={PAGE}",
                    tokens=tokens_file,
                    duration_s=s,
                ),
                "hub_next": lambda s: wrk(
                    "hub cursor page", f"{base}{cursor_path}", tokens=tokens_file, duration_s=s
                ),
            },
            rounds=ROUNDS,
            round_s=ROUND_S,
            warm_up_s=WARM_UP_S,
        )
        times, serial_bad = serial(server.port, f"/api/v1/hub?limit={PAGE}", tokens)
        rss = server.peak_rss_mb()
    finally:
        server.stop()

    visible = [len(e) for e in seeded["expected"]]
    print(
        f"seeded {MEMBERS} members, {ACTIVITIES} activities, {seeded['counters']} counters, "
        f"{seeded['draws']} wins in {seed_s:.0f}s ({backend}); checked members see {visible}"
    )
    print(f"hubs of {CHECKED} members as expected: {hubs_ok}")
    ping = median_run([(p.requests_per_s, p) for p in pings])[1]
    hub_ratio, hub = median_run(ratios["hub"])
    next_ratio, hub_next = median_run(ratios["hub_next"])
    print(f"{ROUNDS} rounds, {ROUND_S}s a run; ratio = req/s over the mean of the pings around it")
    print("pings req/s: " + ", ".join(f"{p.requests_per_s:.0f}" for p in pings))
    for name, runs in ratios.items():
        print(f"{name} req/s: " + ", ".join(f"{x.requests_per_s:.0f} ({r:.3f})" for r, x in runs))
    print_table([ping, hub, hub_next], ping)
    serial_p50, serial_p99 = percentile(times, 50), percentile(times, 99)
    print(f"serial client: {SERIAL} requests, p50 {serial_p50:.2f} ms, p99 {serial_p99:.2f} ms")
    loads: list[Load] = pings + [load for runs in ratios.values() for _, load in runs]
    emit(
        {
            "workload": "hub",
            "backend": backend,
            "ops_per_s": round(hub.requests_per_s, 1),
            "peak_rss_mb": rss,
            "p50_ms": round(hub.p50_ms, 2),
            "p99_ms": round(hub.p99_ms, 2),
            "ratio_to_trivial": round(hub_ratio, 3),
            "cursor_ratio_to_trivial": round(next_ratio, 3),
            "trivial_ops_per_s": round(ping.requests_per_s, 1),
            "serial_p50_ms": round(serial_p50, 2),
            "serial_p99_ms": round(serial_p99, 2),
            "members": MEMBERS,
            "activities": ACTIVITIES,
            "cpu_us_per_request": cpu_per_request(pings, ratios),
            "invariants_ok": hubs_ok
            and serial_bad == 0
            and all(load.errors == 0 for load in loads)
            and all(v > PAGE for v in visible),
        }
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--seed":
        seed(sys.argv[2])
    else:
        main()

"""A real multi-process server for load and crash tests.

``gonghui serve --workers 2`` runs as a subprocess in its own session (so ``kill -9`` takes
its whole process group) with its own data directory; on PostgreSQL it uses the test
database. The lottery is seeded by a separate Python process through the services, in the
same data directory, so that keys and database are the server's own. Invariants are then
read straight from the database with a plain engine (:func:`check_invariants`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from gonghui.clock import local_day
from tests.serverproc import ServerProcess

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Lottery:
    activity_id: int
    tokens: list[str]
    initial_stock: dict[int, int]
    spec: dict[str, Any]  # what it was seeded with (see :func:`seed_main`)


def seed_main() -> None:
    """Runs in a child process: migrate, create members and a published lottery."""
    from gonghui import clock
    from gonghui.accounts.service import create_user
    from gonghui.accounts.tokens import start_session
    from gonghui.activities import service as activities
    from gonghui.activities.schemas import ActivityCreate
    from gonghui.db import unit_of_work
    from gonghui.members import service as members
    from gonghui.members.idnumber import check_character
    from gonghui.migrations import upgrade
    from gonghui.orgs import service as orgs
    from gonghui.orgs.models import OrgLevel
    from gonghui.tenancy import SYSTEM

    spec = json.loads(sys.argv[1])
    upgrade()
    tokens = []
    with unit_of_work() as session:
        org = orgs.create_org(
            session, actor=SYSTEM, code="LOAD", name="压测工会", level=OrgLevel.CITY, parent_id=None
        )
        for n in range(spec["members"]):
            first17 = f"440101{1950 + n // 1000:04d}0101{n % 1000:03d}"
            number = first17 + check_character(first17)
            user = create_user(session, display_name=f"m{n}")
            members.add_roster_entry(
                session, actor=SYSTEM, org_id=org.id, name=f"会员{n}", id_number=number
            )
            members.verify(session, user_id=user.id, name=f"会员{n}", id_number=number)
            tokens.append(start_session(session, user=user).access_token)
        start = clock.now() - timedelta(minutes=1)
        activity = activities.create_activity(
            session,
            actor=SYSTEM,
            data=ActivityCreate.model_validate(
                {
                    "org_id": org.id,
                    "title": "压测抽奖",
                    "starts_at": start.isoformat(),
                    "ends_at": (start + timedelta(days=1)).isoformat(),
                    **spec["activity"],
                }
            ),
        )
        activities.publish(session, actor=SYSTEM, activity_id=activity.id)
        activity_id = activity.id
    sys.stdout.write(json.dumps({"activity_id": activity_id, "tokens": tokens}))


class Server(ServerProcess):
    """A two-process server on its own data directory (and the test database on
    PostgreSQL), with the seeding and database reads of the load tests."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        *,
        workers: int = 2,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            workers=workers,
            data_dir=data_dir,
            database_url=database_url,
            # Tokens must outlive a slow run on a busy machine.
            env={"GONGHUI_ACCESS_TOKEN_TTL_S": "7200", **(env or {})},
        )

    @property
    def resolved_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'gonghui.db').resolve()}"

    def seed(self, spec: dict[str, Any]) -> Lottery:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "from tests.activities.load.harness import seed_main; seed_main()",
                json.dumps(spec),
            ],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            check=True,
            timeout=300,
        )
        seeded = json.loads(out.stdout)
        with self.engine() as engine, engine.connect() as conn:
            stock = dict(
                conn.execute(
                    text(
                        "SELECT position, initial_stock FROM activities_lottery_prize "
                        "WHERE activity_id = :a"
                    ),
                    {"a": seeded["activity_id"]},
                ).all()
            )
        return Lottery(seeded["activity_id"], seeded["tokens"], stock, spec)

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        engine = create_engine(self.resolved_url)
        try:
            yield engine
        finally:
            engine.dispose()

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine() as engine, engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())


@contextmanager
def running_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "server-data", os.environ.get("GONGHUI_TEST_DATABASE_URL", ""))
    server.data_dir.mkdir(parents=True)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_hosts(tmp_path: Path, *, hosts: int = 2, workers: int = 1) -> Iterator[list[Server]]:
    """Servers that stand for separate hosts: each its own process group, port and data
    directory, all on the test database (PostgreSQL). The first seeds; call
    :func:`share_keys` before starting the others."""
    servers = [
        Server(
            tmp_path / f"host-{n}",
            os.environ.get("GONGHUI_TEST_DATABASE_URL", ""),
            workers=workers,
        )
        for n in range(hosts)
    ]
    for server in servers:
        server.data_dir.mkdir(parents=True)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def share_keys(servers: list[Server]) -> None:
    """Every host gets the first one's keys (as a deployment configures them all alike),
    so that a token issued through one is good on all."""
    source = servers[0].data_dir / "secrets"
    for server in servers[1:]:
        shutil.copytree(source, server.data_dir / "secrets", dirs_exist_ok=True)


def check_invariants(server: Server, lottery: Lottery, answered: dict[int, dict[str, Any]]) -> None:
    """What the database holds against what members were answered (``answered``: every
    successful draw by id, each once, retries folded), by the rules the lottery was seeded
    with: every success durable as answered and every durable draw answered; no member past
    the limit or the win cap; chances, limits and wins claimed exactly for the draws made
    (none taken and lost); nothing oversold; the budget holding what was issued and never
    more than its total; one ledger row per prize won."""
    aid = lottery.activity_id
    activity = lottery.spec["activity"]
    rules = activity["config"]["lottery"]
    draws = server.query(
        "SELECT id, membership_id, outcome, prize_position, benefit_ref "
        "FROM activities_lottery_draw WHERE activity_id = :a",
        a=aid,
    )
    assert {d[0] for d in draws} == set(answered)
    for draw_id, _, outcome, _, benefit in draws:
        assert (answered[draw_id]["outcome"], answered[draw_id]["benefit"]) == (outcome, benefit)
    per_member = Counter(d[1] for d in draws)
    wins = Counter(d[1] for d in draws if d[2] == "won")
    if activity.get("limit_total") is not None:
        assert max(per_member.values(), default=0) <= activity["limit_total"]
    if rules.get("max_wins_per_member") is not None:
        assert max(wins.values(), default=0) <= rules["max_wins_per_member"]

    counters = server.query(
        "SELECT membership_id, scope, used, granted FROM activities_counter WHERE activity_id = :a",
        a=aid,
    )
    by_scope: dict[str, dict[int, int]] = {}
    for member, scope, used, granted in counters:
        assert 0 <= used <= granted or scope == "draws"
        by_scope.setdefault(scope, {})[member] = used
    assert by_scope.get("draws", {}) == dict(per_member)
    assert by_scope.get(f"free:{local_day().isoformat()}", {}) == dict(per_member)
    if activity.get("limit_total") is not None:
        assert by_scope.get("limit", {}) == dict(per_member)
    if rules.get("max_wins_per_member") is not None:
        assert {m: n for m, n in by_scope.get("wins", {}).items() if n} == dict(wins)

    stock = dict(
        server.query(
            "SELECT position, stock FROM activities_lottery_prize WHERE activity_id = :a", a=aid
        )
    )
    won_by_prize = Counter(d[3] for d in draws if d[2] == "won")
    for position, initial in lottery.initial_stock.items():
        assert stock[position] >= 0
        assert stock[position] + won_by_prize.get(position, 0) == initial

    prizes = rules["prizes"]
    issued_cents, issued = server.query(
        "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM benefits_ledger_entry "
        "WHERE activity_id = :a AND kind = 'voucher' AND action = 'issue'",
        a=aid,
    )[0]
    assert issued == sum(
        n for position, n in won_by_prize.items() if prizes[position]["kind"] == "voucher"
    )
    if activity.get("budget_cents") is not None:
        spent, total = server.query(
            "SELECT cents_spent, cents_total FROM benefits_budget WHERE activity_id = :a", a=aid
        )[0]
        assert spent == issued_cents <= total
    ledger = server.query(
        "SELECT COUNT(*) FROM benefits_ledger_entry WHERE activity_id = :a", a=aid
    )
    assert ledger[0][0] == sum(won_by_prize.values())
    points = server.query("SELECT COALESCE(SUM(balance), 0) FROM benefits_points_account")[0][0]
    assert points == sum(
        prizes[position]["value"] * n
        for position, n in won_by_prize.items()
        if prizes[position]["kind"] == "points"
    )

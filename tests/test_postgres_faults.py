"""PostgreSQL stopped as a crash would (immediate mode) and started again during a burst of
draws, code requests (a plain write) and hub reads to a two-process server.

While it is down every request is answered within the client's timeout, each a success or
the one error envelope with 503 ``database.unavailable``, and ``/readyz`` reports the
database failed; once it is back, ``/readyz`` reports it ok and requests succeed again, from
the same server processes. Every draw refused with the 503 is then retried with its
Idempotency-Key and answered once, and the lottery keeps every invariant (every success
durable as answered, nothing half-written, nothing issued twice, nothing oversold, the
budget held).

The test starts its own PostgreSQL (scripts/pg-throwaway.sh) and server, whatever the
suite's database; it runs once, in the suite's PostgreSQL run without Redis (where the
server's rate limits and cache feed also live in the database).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gonghui.db import UNAVAILABLE, UNAVAILABLE_RETRY_AFTER_S
from gonghui.settings import get_settings
from tests.activities.load.harness import Lottery, Server, check_invariants
from tests.faults import error_code, eventually
from tests.pgproc import PostgresProcess

pytestmark = [
    pytest.mark.database_fallback,
    pytest.mark.slow,
    pytest.mark.skipif(
        get_settings().is_sqlite or bool(get_settings().redis_url),
        reason="runs once, in the PostgreSQL run (it starts a PostgreSQL of its own)",
    ),
]

MEMBERS = 100
LIMIT = 12  # draws each member may make: the burst sends each member exactly that many
SPEC = {
    "members": MEMBERS,
    "activity": {
        "limit_total": LIMIT,
        "budget_cents": 2000,
        "config": {
            "kind": "lottery",
            "lottery": {
                "prizes": [
                    {"name": "一元券", "kind": "voucher", "weight": 5, "stock": 30, "value": 100},
                    {"name": "积分", "kind": "points", "weight": 3, "stock": 60, "value": 10},
                    {"name": "谢谢参与", "kind": "none", "weight": 2},
                ],
                "free_draws_per_day": LIMIT,
                "max_wins_per_member": 1,
            },
        },
    },
}
CLIENTS = 12
CLIENT_TIMEOUT_S = 30.0  # an answer later than this counts as a hang
RESUME_WITHIN_S = 60.0  # a deadline for the server to act by itself, not a speed

DRAW, SEND, HUB = "draw", "send", "hub"


@dataclass(frozen=True)
class Answer:
    began: str  # the phase the request began in
    ended: str  # and the one it ended in
    kind: str
    member: int
    key: str | None  # a draw's Idempotency-Key
    status: int | None  # None: no answer (connection failed, or none within the timeout)
    code: str | None  # the error envelope's code
    body: Any


class Burst:
    """Clients sending draws (each member's keys in turn, every member once per key), code
    requests for fresh phones and hub reads, until stopped; every answer is kept with the
    phase it began and ended in."""

    def __init__(self, server: Server, lottery: Lottery) -> None:
        self.server = server
        self.lottery = lottery
        self.phase = "up"
        self.answers: list[Answer] = []
        self._draws = iter([(m, f"d{k}") for k in range(LIMIT) for m in range(MEMBERS)])
        self._phones = itertools.count(13_900_000_000)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(CLIENTS)
        self._futures = [self._pool.submit(self._client, n) for n in range(CLIENTS)]

    def _client(self, n: int) -> None:
        # No keep-alive: a connection the server closed when idle would fail spuriously.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(
            base_url=self.server.url, timeout=CLIENT_TIMEOUT_S, limits=limits
        ) as client:
            for turn in itertools.count(n):
                if self._stop.is_set():
                    return
                member, key = turn % MEMBERS, None
                kind = (DRAW, SEND, DRAW, HUB)[turn % 4]
                with self._lock:
                    if kind == DRAW:
                        drawn = next(self._draws, None)
                        if drawn is None:
                            kind = SEND  # every draw sent: writes go on as code requests
                        else:
                            member, key = drawn
                    phone = str(next(self._phones))
                phase = self.phase
                try:
                    resp = self._send(client, kind, member, key, phone)
                    status, code = resp.status_code, error_code(resp)
                    body = resp.json()
                except httpx.TransportError:
                    status, code, body = None, None, None
                answer = Answer(phase, self.phase, kind, member, key, status, code, body)
                with self._lock:
                    self.answers.append(answer)

    def _send(
        self, client: httpx.Client, kind: str, member: int, key: str | None, phone: str
    ) -> httpx.Response:
        if kind == SEND:
            return client.post("/api/v1/auth/sms/send", json={"phone": phone, "purpose": "login"})
        return _as_member(client, self.lottery, kind, member, key)

    def count(self, matches: Callable[[Answer], bool]) -> int:
        with self._lock:
            return sum(1 for answer in self.answers if matches(answer))

    def wait_for(self, what: str, matches: Callable[[Answer], bool], count: int) -> None:
        """Until ``count`` answers match (the burst is running, not a speed)."""

        def enough() -> bool:
            for future in self._futures:
                if future.done():
                    future.result()  # a client that failed: raise its error
                    raise AssertionError("a client stopped")
            return self.count(matches) >= count

        eventually(what, enough, RESUME_WITHIN_S)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for future in self._futures:
            future.result()
        self._pool.shutdown()
        return self.answers


def _as_member(
    client: httpx.Client, lottery: Lottery, kind: str, member: int, key: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {lottery.tokens[member]}"}
    if kind == HUB:
        return client.get("/api/v1/hub", headers=headers)
    assert key is not None
    return client.post(
        f"/api/v1/activities/{lottery.activity_id}/draws",
        json={"entropy": f"m{member}{key}"},
        headers={**headers, "Idempotency-Key": key},
    )


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started that are running now (the server's workers and its
    writer process)."""
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _database_check(server: Server) -> tuple[int, str]:
    """``/readyz``'s status and its database check (of whichever process answers)."""
    resp = httpx.get(f"{server.url}/readyz", timeout=CLIENT_TIMEOUT_S)
    return resp.status_code, resp.json()["checks"]["database"]


@pytest.fixture
def postgres() -> Iterator[PostgresProcess]:
    cluster = PostgresProcess().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def server(tmp_path: Path, postgres: PostgresProcess) -> Iterator[Server]:
    # Every code request comes from one address: no limit on it here.
    env = {"GONGHUI_OTP_MAX_PER_IP_PER_HOUR": "1000000"}
    host = Server(tmp_path / "server-data", postgres.url, env=env)
    host.data_dir.mkdir(parents=True)
    try:
        yield host
    finally:
        host.stop()


def test_postgres_restarted_during_a_burst(server: Server, postgres: PostgresProcess) -> None:
    lottery = server.seed(SPEC)
    server.start()
    assert server.process is not None
    processes = server.process
    workers = _children(processes.pid)
    assert len(workers) >= 3  # two server processes and the writer
    assert _database_check(server) == (200, "ok")

    def began_and_ended(
        phase: str, kind: str, status: int | None = None
    ) -> Callable[[Answer], bool]:
        return lambda a: (
            (a.began, a.ended, a.kind) == (phase, phase, kind) and status in (None, a.status)
        )

    burst = Burst(server, lottery)
    try:
        burst.wait_for("draws while up", began_and_ended("up", DRAW, 200), 100)
        burst.phase = "crashing"
        postgres.crash()
        burst.phase = "down"
        eventually(
            "/readyz reports the database down",
            lambda: _database_check(server) == (503, "failed"),
            RESUME_WITHIN_S,
        )
        refused = httpx.post(
            f"{server.url}/api/v1/auth/sms/send",
            json={"phone": "13700000000", "purpose": "login"},
            timeout=CLIENT_TIMEOUT_S,
        )
        assert (refused.status_code, error_code(refused)) == (503, UNAVAILABLE)
        assert refused.headers["Retry-After"] == str(UNAVAILABLE_RETRY_AFTER_S)
        for kind in (DRAW, SEND):
            burst.wait_for(f"{kind} answered while down", began_and_ended("down", kind), CLIENTS)
        burst.phase = "restarting"
        postgres.start()  # the same cluster, on the same port
        eventually(
            "/readyz reports the database up",
            lambda: _database_check(server) == (200, "ok"),
            RESUME_WITHIN_S,
        )
        burst.phase = "back"
        for kind in (DRAW, SEND, HUB):
            burst.wait_for(f"{kind} succeeds again", began_and_ended("back", kind, 200), 20)
        burst.phase = "steady"
        burst.wait_for("answers once back", lambda a: a.began == a.ended == "steady", 4 * CLIENTS)
    finally:
        answers = burst.stop()
    # The same server processes served throughout: nothing was restarted.
    assert server.process is processes
    assert processes.poll() is None
    assert _children(processes.pid) == workers

    # Every request answered, each a success or the clean refusal; nothing else.
    for answer in answers:
        assert answer.status == 200 or (answer.status, answer.code) == (503, UNAVAILABLE), answer
    assert all(a.status == 200 for a in answers if a.began == a.ended == "up")
    # Down: no write succeeds (reads may, from what a process holds in memory).
    down = [a for a in answers if a.began == a.ended == "down"]
    assert {(a.status, a.code) for a in down if a.kind != HUB} == {(503, UNAVAILABLE)}
    # Back for good: every request succeeds.
    assert {a.status for a in answers if a.began == a.ended == "steady"} == {200}

    # Every draw refused while it was down, retried with its key: each answered once (a
    # draw that committed before its connection dropped, with its first answer).
    unanswered = [a for a in answers if a.kind == DRAW and a.status != 200]
    assert unanswered
    with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT_S) as client:
        retried = [_as_member(client, lottery, DRAW, a.member, a.key) for a in unanswered]
    assert [resp.status_code for resp in retried] == [200] * len(unanswered)
    bodies = [a.body for a in answers if a.kind == DRAW and a.status == 200]
    answered = {body["draw_id"]: body for body in [*bodies, *(resp.json() for resp in retried)]}
    # One draw per key sent: none lost, none drawn twice.
    assert len(answered) == len({(a.member, a.key) for a in answers if a.kind == DRAW})
    server.stop()
    check_invariants(server, lottery, answered)

    # Every code request answered as sent was stored; none stored twice.
    sent = sum(1 for a in answers if a.kind == SEND and a.status == 200)
    unknown = sum(1 for a in answers if a.kind == SEND and a.status != 200)
    stored = server.query("SELECT COUNT(*) FROM accounts_otp_code")[0][0]
    assert sent <= stored <= sent + unknown


def test_a_server_process_replaced_while_the_database_is_down_serves_once_it_is_back(
    server: Server, postgres: PostgresProcess
) -> None:
    """A server process that dies during an outage is started again by its supervisor; it
    starts without the database (its worker registers once it is back) instead of failing
    its startup, which would stop every process of the server."""
    lottery = server.seed(SPEC)
    server.start()
    assert server.process is not None
    processes = server.process
    workers = _children(processes.pid)
    postgres.crash()
    eventually(
        "/readyz reports the database down",
        lambda: _database_check(server) == (503, "failed"),
        RESUME_WITHIN_S,
    )
    # A server process killed: the last started (the hot writer starts before them).
    os.kill(max(workers), signal.SIGKILL)
    eventually(
        "another server process started",
        lambda: len(_children(processes.pid) - workers) == 1,
        RESUME_WITHIN_S,
    )
    time.sleep(3)  # long enough for its startup to have run against the stopped database
    assert processes.poll() is None
    assert _database_check(server) == (503, "failed")
    postgres.start()
    eventually(
        "/readyz reports the database up",
        lambda: _database_check(server) == (200, "ok"),
        RESUME_WITHIN_S,
    )
    with httpx.Client(base_url=server.url, timeout=CLIENT_TIMEOUT_S) as client:
        answers = [_as_member(client, lottery, DRAW, member, "after") for member in range(8)]
    assert [resp.status_code for resp in answers] == [200] * 8
    assert processes.poll() is None

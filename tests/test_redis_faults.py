"""Redis killed (SIGKILL) and started again on the same port during a burst of requests to
two server processes that share it: rate-limited requests fail closed (a clean 503) while it
is down, caches fall back to reading the change feed's table, and both processes resume by
themselves once it is back. No request fails any other way.

The test starts its own redis-server (scripts/redis-throwaway.sh), so it runs in every run,
with or without a Redis configured for the suite."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from gonghui import invalidation, ratelimit
from tests.faults import error_code, eventually
from tests.fixtures import StaffFactory
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.slow

SEND = "/api/v1/auth/sms/send"
ME = "/api/v1/auth/me"
PER_ADDRESS = 12  # codes one address may ask for in an hour, in both processes together
CLIENTS = 6
# Long enough for a process to notice that Redis is gone and read the table instead, well
# short of the table's read interval while it listens: a change that shows within this
# while Redis is down was read from the table by the fallback.
FALLBACK_WITHIN_S = invalidation.SUBSCRIBED_FEED_MAX_LAG_S / 2
RESUME_WITHIN_S = 60.0  # a deadline for a process to act by itself, not a speed


@dataclass(frozen=True)
class Answer:
    began: str  # the phase the request began in
    ended: str  # and the one it ended in
    path: str
    status: int
    code: str | None  # the error envelope's code


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.stop()


@pytest.fixture
def hosts(redis_server: RedisProcess) -> Iterator[list[ServerProcess]]:
    env = {
        "GONGHUI_REDIS_URL": redis_server.url,
        "GONGHUI_OTP_MAX_PER_IP_PER_HOUR": str(PER_ADDRESS),
    }
    started: list[ServerProcess] = []
    try:
        for _ in range(2):
            started.append(ServerProcess(env=env).start())
        yield started
    finally:
        for host in started:
            host.stop()


class Burst:
    """Clients sending code requests (rate-limited) and sign-in reads (cached) to both
    processes in turn, until stopped; every answer is kept with the phase it began and
    ended in."""

    def __init__(self, hosts: list[ServerProcess], headers: dict[str, str]) -> None:
        self.hosts = hosts
        self.headers = headers
        self.phase = "up"
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._phones = itertools.count(13_900_000_000)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(CLIENTS)
        self._futures = [self._pool.submit(self._client, n) for n in range(CLIENTS)]

    def _client(self, n: int) -> None:
        clients = [httpx.Client(base_url=h.url, timeout=30) for h in self.hosts]
        try:
            for turn in itertools.count(n):
                if self._stop.is_set():
                    return
                client = clients[turn % len(clients)]
                phase = self.phase
                if turn % 2:
                    with self._lock:
                        phone = str(next(self._phones))
                    resp = client.post(SEND, json={"phone": phone, "purpose": "login"})
                else:
                    resp = client.get(ME, headers=self.headers)
                path, status = resp.request.url.path, resp.status_code
                answer = Answer(phase, self.phase, path, status, error_code(resp))
                with self._lock:
                    self.answers.append(answer)
        finally:
            for client in clients:
                client.close()

    def wait_for(self, count: int) -> None:
        """Until ``count`` more answers came in (the burst is running, not a speed)."""
        target = len(self.answers) + count
        while len(self.answers) < target:
            for future in self._futures:
                if future.done():
                    future.result()  # a client that failed: raise its error
                    raise AssertionError("a client stopped")
            time.sleep(0.01)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for future in self._futures:
            future.result()  # no client failed (no connection refused, no timeout)
        self._pool.shutdown()
        return self.answers


def _status(host: ServerProcess, method: str, path: str, **kwargs: Any) -> int:
    resp = httpx.request(method, f"{host.url}{path}", timeout=30, **kwargs)
    error_code(resp)
    return resp.status_code


def _subscribers(redis_server: RedisProcess) -> int:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        channel = "gonghui:0:cache-changes"
        return int(dict(client.pubsub_numsub(channel))[channel.encode()])
    finally:
        client.close()


def test_redis_restarted_during_a_burst(
    make_staff: StaffFactory, hosts: list[ServerProcess], redis_server: RedisProcess
) -> None:
    first, second = hosts
    steady, signed_out_while_down, signed_out_after = (make_staff(None, None) for _ in range(3))
    eventually("both processes listen", lambda: _subscribers(redis_server) == 2, RESUME_WITHIN_S)
    for staff in (signed_out_while_down, signed_out_after):
        assert {_status(h, "GET", ME, headers=staff.headers) for h in hosts} == {200}

    burst = Burst(hosts, steady.headers)
    try:
        burst.wait_for(4 * PER_ADDRESS)
        burst.phase = "killing"
        redis_server.kill()
        burst.phase = "down"
        burst.wait_for(4 * CLIENTS)
        # A code request refused by both, cleanly; a sign-out through one process
        # reaches the other through the table.
        for host in hosts:
            resp = httpx.post(f"{host.url}{SEND}", json={"phone": "13700000000"}, timeout=30)
            assert resp.status_code == 503
            assert error_code(resp) == ratelimit.UNAVAILABLE
        status = _status(
            first, "POST", "/api/v1/auth/logout", headers=signed_out_while_down.headers
        )
        assert status == 204
        eventually(
            "a sign-out through one process locks the token out of the other, Redis down",
            lambda: _status(second, "GET", ME, headers=signed_out_while_down.headers) == 401,
            FALLBACK_WITHIN_S,
        )
        burst.wait_for(4 * CLIENTS)
        burst.phase = "restarting"
        redis_server.start()  # same port
        eventually(
            "both processes count code requests again",
            lambda: all(
                _status(h, "POST", SEND, json={"phone": "13700000001"}) != 503 for h in hosts
            ),
            RESUME_WITHIN_S,
        )
        eventually("both processes listen again", lambda: _subscribers(redis_server) == 2, 60)
        burst.phase = "back"
        burst.wait_for(4 * CLIENTS)
        status = _status(second, "POST", "/api/v1/auth/logout", headers=signed_out_after.headers)
        assert status == 204
        eventually(
            "a sign-out reaches the other process once Redis is back",
            lambda: _status(first, "GET", ME, headers=signed_out_after.headers) == 401,
            RESUME_WITHIN_S,
        )
    finally:
        answers = burst.stop()

    def seen(phase: str, path: str, *, began_only: bool = False) -> list[tuple[int, str | None]]:
        """The answers to requests made in ``phase`` (that began in it, if ``began_only``)."""
        return [
            (a.status, a.code)
            for a in answers
            if a.path == path and a.began == phase and (began_only or a.ended == phase)
        ]

    assert all(a.status < 500 or a.code == ratelimit.UNAVAILABLE for a in answers), answers
    # Up: the limit is counted once for both processes.
    # (A request counted just before the kill may answer after it.)
    assert seen("up", SEND, began_only=True).count((200, None)) == PER_ADDRESS
    assert set(seen("up", SEND)) == {(200, None), (429, "accounts.otp_ip_throttled")}
    # Down: never unlimited, only refused.
    assert set(seen("down", SEND)) == {(503, ratelimit.UNAVAILABLE)}
    # Cached sign-ins answered throughout, from memory or the database.
    assert {(a.status, a.code) for a in answers if a.path == ME} == {(200, None)}
    assert seen("down", ME)
    assert seen("back", ME)
    # Back: counted again (the restarted Redis kept nothing, so a new window).
    assert (200, None) in seen("back", SEND) or (429, "accounts.otp_ip_throttled") in seen(
        "back", SEND
    )

"""Two hosts drawing at once against one lottery on PostgreSQL (each host its own process
group, port and hot writer; no lock shared between them): nothing oversold, stock + wins =
initial, per-member limits and win caps hold, the budget is never overrun, every success
is durable and every draw answered; with ``kill -9`` of one host mid-burst as well.

Each member's requests reach both hosts at once, in opposite member orders, so that the
two writers' batches hold the same members' rows: a writer that took them in batch order
deadlocks, and one that did not retry a lost deadlock fails draws.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from gonghui.settings import get_settings
from tests.activities.load.harness import (
    Lottery,
    Server,
    check_invariants,
    running_hosts,
    share_keys,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(get_settings().is_sqlite, reason="one SQLite file is served by one host"),
]

MEMBERS = 200
LIMIT = 3
KEYS = [f"d{n}" for n in range(LIMIT + 1)]  # one draw more than the limit: one is refused
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
                "free_draws_per_day": LIMIT + 2,
                "max_wins_per_member": 1,
            },
        },
    },
}

# (host index, member, key) -> (status, body); status None: no answer (the host died).
Sent = tuple[int, int, str]
Answer = tuple[int | None, dict[str, Any] | None]


async def _fire(
    hosts: list[Server],
    lottery: Lottery,
    requests: list[Sent],
    *,
    kill: tuple[int, int] | None = None,
) -> list[tuple[Sent, Answer]]:
    """Every request at once (at most 200 in flight); ``kill``: (host, after this many
    successes) to ``kill -9`` mid-burst."""
    url = f"/api/v1/activities/{lottery.activity_id}/draws"
    gate = asyncio.Semaphore(200)
    successes = 0
    killed = False
    # No keep-alive: a pooled connection the server closed when idle would fail spuriously.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    clients = [
        httpx.AsyncClient(base_url=host.url, timeout=httpx.Timeout(180), limits=limits)
        for host in hosts
    ]

    async def one(sent: Sent) -> tuple[Sent, Answer]:
        nonlocal successes, killed
        host, member, key = sent
        async with gate:
            try:
                resp = await clients[host].post(
                    url,
                    json={"entropy": f"m{member}{key}"},
                    headers={
                        "Authorization": f"Bearer {lottery.tokens[member]}",
                        "Idempotency-Key": key,
                    },
                )
            except httpx.TransportError:
                return sent, (None, None)
        if resp.status_code >= 500:
            return sent, (resp.status_code, None)
        if resp.status_code == 200:
            successes += 1
        if kill is not None and successes >= kill[1] and not killed:
            killed = True
            await asyncio.to_thread(hosts[kill[0]].kill)
        return sent, (resp.status_code, resp.json())

    try:
        return list(await asyncio.gather(*(one(sent) for sent in requests)))
    finally:
        for client in clients:
            await client.aclose()


def _burst_requests() -> list[Sent]:
    """Each member's keys spread over both hosts, d0 sent to both, so that both writers'
    batches hold the same members at once: host 0 takes members in ascending order, host 1
    in ascending pairs each the other way round (1, 0, 3, 2, ...)."""
    swapped = [m ^ 1 if m ^ 1 < MEMBERS else m for m in range(MEMBERS)]
    requests: list[Sent] = []
    for first, second in zip(range(MEMBERS), swapped, strict=True):
        for i, key in enumerate(KEYS):
            requests.append((i % 2, first if i % 2 == 0 else second, key))
        requests.append((1, second, KEYS[0]))
    return requests


def test_two_hosts_drawing_at_once_keep_every_invariant(tmp_path: Path) -> None:
    with running_hosts(tmp_path) as hosts:
        lottery = hosts[0].seed(SPEC)
        share_keys(hosts)
        for host in hosts:
            host.start()
        first = asyncio.run(_fire(hosts, lottery, _burst_requests()))
        # Then every key once more, on the other host than the first time.
        retries = asyncio.run(
            _fire(hosts, lottery, [(1 - h, m, k) for (h, m, k), _ in first if k != KEYS[0]])
        )
        for host in hosts:
            host.stop()

        by_key: dict[tuple[int, str], list[Answer]] = {}
        for (_, member, key), answer in [*first, *retries]:
            by_key.setdefault((member, key), []).append(answer)
        answered: dict[int, dict[str, Any]] = {}
        refused: Counter[str] = Counter()
        for (member, key), answers in by_key.items():
            # Nothing failed, and every retry got the first answer: the same draw, or (the
            # member being at the limit, which never lifts) the same refusal.
            assert all(status is not None and status < 500 for status, _ in answers), answers
            original, *again = answers
            assert again, (member, key)
            assert all(answer == original for answer in again), (member, key)
            status, body = original
            assert body is not None
            if status == 200:
                answered[body["draw_id"]] = body
            else:
                refused[body["error"]["code"]] += 1
        assert set(refused) == {"activities.limit_total_reached"}
        assert sum(refused.values()) == MEMBERS  # each member's one draw over the limit
        assert len(answered) == LIMIT * MEMBERS
        check_invariants(hosts[0], lottery, answered)


def test_kill_9_of_one_host_mid_burst_loses_nothing(tmp_path: Path) -> None:
    with running_hosts(tmp_path) as hosts:
        lottery = hosts[0].seed(SPEC)
        share_keys(hosts)
        for host in hosts:
            host.start()
        requests = [
            (h, m, k)
            for h, m, k in _burst_requests()
            if k != KEYS[-1] and (h, k) != (1, KEYS[0])  # three distinct keys: no refusal
        ]
        first = asyncio.run(_fire(hosts, lottery, requests, kill=(0, 60)))
        assert hosts[0].process is None  # killed mid-burst
        lost = [sent for sent, (status, _) in first if status is None or status >= 500]
        assert lost, "the kill must interrupt the burst"
        # The host that lived answered all of its draws.
        assert all(status == 200 for (h, _, _), (status, _) in first if h == 1)

        # Every request that got no answer, retried with its key on the host that lived:
        # each is answered once, a draw committed before the kill with its first answer.
        retried = asyncio.run(_fire(hosts, lottery, [(1, m, k) for _, m, k in lost]))
        assert all(status == 200 for _, (status, _) in retried)
        hosts[1].stop()

        answered: dict[int, dict[str, Any]] = {}
        by_key: dict[tuple[int, str], int] = {}
        for (_, member, key), (status, body) in [*first, *retried]:
            if status == 200:
                assert body is not None
                answered[body["draw_id"]] = body
                assert by_key.setdefault((member, key), body["draw_id"]) == body["draw_id"]
        assert len(by_key) == len(requests) == len(answered)
        check_invariants(hosts[1], lottery, answered)

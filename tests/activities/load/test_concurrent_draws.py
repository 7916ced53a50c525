"""Hundreds of members drawing at once against a 2-process server: no oversell, no
member past a limit, no budget overrun, retries answered with the original result."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.activities.load.harness import Lottery, Server, check_invariants, running_server

MEMBERS = 240
DRAWS_PER_MEMBER = 3  # the limit is 2: one of the three must be refused
SPEC = {
    "members": MEMBERS,
    "activity": {
        "limit_total": 2,
        "budget_cents": 2000,
        "config": {
            "kind": "lottery",
            "lottery": {
                "prizes": [
                    {"name": "一元券", "kind": "voucher", "weight": 5, "stock": 30, "value": 100},
                    {"name": "积分", "kind": "points", "weight": 3, "stock": 40, "value": 10},
                    {"name": "谢谢参与", "kind": "none", "weight": 2},
                ],
                "free_draws_per_day": 5,
                "max_wins_per_member": 1,
            },
        },
    },
}


async def _member(
    client: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    lottery: Lottery,
    index: int,
    keys: list[str],
) -> list[tuple[str, int, dict[str, Any]]]:
    url = f"/api/v1/activities/{lottery.activity_id}/draws"
    headers = {"Authorization": f"Bearer {lottery.tokens[index]}"}

    async def one(key: str) -> tuple[str, int, dict[str, Any]]:
        async with gate:
            resp = await client.post(
                url,
                json={"entropy": f"m{index}{key}"},
                headers={**headers, "Idempotency-Key": key},
            )
        return key, resp.status_code, resp.json()

    return list(await asyncio.gather(*(one(k) for k in keys)))


KEYS = [f"d{n}" for n in range(DRAWS_PER_MEMBER)]


async def _burst(
    server: Server, lottery: Lottery, keys: list[str]
) -> list[list[tuple[str, int, dict[str, Any]]]]:
    # No keep-alive: a pooled connection the server closed when idle would fail spuriously.
    limits = httpx.Limits(max_connections=MEMBERS, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=server.url, timeout=httpx.Timeout(180), limits=limits
    ) as client:
        # At most MEMBERS requests in flight: httpx's pool handles a long queue of waiting
        # requests in quadratic time, which would measure the client, not the server.
        gate = asyncio.Semaphore(MEMBERS)
        return list(
            await asyncio.gather(*(_member(client, gate, lottery, i, keys) for i in range(MEMBERS)))
        )


@pytest.mark.slow
def test_concurrent_draws_keep_every_invariant(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        lottery = server.seed(SPEC)
        server.start()
        # Each member's draws at once, with d0 retried while the first d0 is in flight.
        results = asyncio.run(_burst(server, lottery, [*KEYS, "d0"]))
        # Then every key retried once the burst is over.
        retries = asyncio.run(_burst(server, lottery, KEYS))
        server.stop()

        codes: Counter[str] = Counter()
        successes: dict[int, dict[str, Any]] = {}
        for member_results, member_retries in zip(results, retries, strict=True):
            by_key: dict[str, list[tuple[int, dict[str, Any]]]] = {}
            for key, status, body in [*member_results, *member_retries]:
                assert status < 500, body
                by_key.setdefault(key, []).append((status, body))
            for key, answers in by_key.items():
                # Every retry answers exactly as the original did: the same draw, or (once
                # the member is at the limit, which never lifts) the same refusal.
                original, *again = answers
                assert again, key
                assert all(answer == original for answer in again), (key, answers)
                status, body = original
                if status == 200:
                    successes[body["draw_id"]] = body
                else:
                    codes[body["error"]["code"]] += 1
            assert sum(status == 200 for (status, _), *_ in by_key.values()) == 2
        assert set(codes) <= {"activities.limit_total_reached"}

        # Three tries each, limit two: exactly two drawn per member.
        assert len(successes) == 2 * MEMBERS
        check_invariants(server, lottery, successes)

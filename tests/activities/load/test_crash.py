"""kill -9 during a burst of draws: every success a client saw survives, stock adds up,
and retries with the same Idempotency-Key after the restart never draw twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.activities.load.harness import Lottery, Server, check_invariants, running_server

MEMBERS = 300
KEYS = ("k0", "k1")
KILL_AFTER_SUCCESSES = 80
SPEC = {
    "members": MEMBERS,
    "activity": {
        "config": {
            "kind": "lottery",
            "lottery": {
                "prizes": [
                    {"name": "五元券", "kind": "voucher", "weight": 1, "stock": 60, "value": 500},
                    {"name": "谢谢参与", "kind": "none", "weight": 1},
                ],
                "free_draws_per_day": len(KEYS),
                "max_wins_per_member": None,
            },
        },
    },
}

Result = tuple[int, str, int | None, dict[str, Any] | None]  # member, key, status, body


async def _fire(
    server: Server, lottery: Lottery, requests: list[tuple[int, str]], kill_after: int | None
) -> list[Result]:
    url = f"/api/v1/activities/{lottery.activity_id}/draws"
    successes = 0
    killed = asyncio.Event()
    gate = asyncio.Semaphore(200)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)

    async def one(client: httpx.AsyncClient, member: int, key: str) -> Result:
        nonlocal successes
        async with gate:
            try:
                resp = await client.post(
                    url,
                    json={"entropy": f"{member}{key}"},
                    headers={
                        "Authorization": f"Bearer {lottery.tokens[member]}",
                        "Idempotency-Key": key,
                    },
                )
            except httpx.TransportError:
                return member, key, None, None  # the server died under this request
        if resp.status_code != 200:
            return member, key, resp.status_code, None
        successes += 1
        if kill_after is not None and successes >= kill_after and not killed.is_set():
            killed.set()
            await asyncio.to_thread(server.kill)
        return member, key, 200, resp.json()

    async with httpx.AsyncClient(
        base_url=server.url, timeout=httpx.Timeout(120), limits=limits
    ) as client:
        return list(await asyncio.gather(*(one(client, m, k) for m, k in requests)))


def _draws(server: Server, activity_id: int) -> dict[int, tuple[int, str, str | None]]:
    rows = server.query(
        "SELECT id, membership_id, outcome, benefit_ref FROM activities_lottery_draw "
        "WHERE activity_id = :a",
        a=activity_id,
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.slow
def test_kill_9_during_draws_loses_no_success(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        lottery = server.seed(SPEC)
        server.start()
        requests = [(m, k) for k in KEYS for m in range(MEMBERS)]
        first = asyncio.run(_fire(server, lottery, requests, KILL_AFTER_SUCCESSES))
        assert server.process is None  # it was killed mid-burst
        seen = {(m, k): body for m, k, status, body in first if status == 200}
        failed = [(m, k) for m, k, status, _ in first if status != 200]
        assert len(seen) >= KILL_AFTER_SUCCESSES
        assert failed, "the kill must interrupt the burst"
        # Failures are transport errors or 5xx from the dying server, never refusals.
        assert all(status is None or status >= 500 for _, _, status, _ in first if status != 200)

        server.start()
        aid = lottery.activity_id
        draws = _draws(server, aid)
        for body in seen.values():
            assert body is not None
            assert draws[body["draw_id"]][1:] == (body["outcome"], body["benefit"])
        ledger_refs = {
            f"voucher:{r[0]}"
            for r in server.query(
                "SELECT voucher_id FROM benefits_ledger_entry WHERE activity_id = :a", a=aid
            )
        }
        won_refs = {ref for _, outcome, ref in draws.values() if outcome == "won"}
        assert won_refs == ledger_refs
        stock = server.query(
            "SELECT stock FROM activities_lottery_prize WHERE activity_id = :a AND position = 0",
            a=aid,
        )[0][0]
        assert stock + len(won_refs) == lottery.initial_stock[0]

        # Retry every request that got no answer, with its key: each is answered once.
        retried = asyncio.run(_fire(server, lottery, failed, None))
        assert all(status == 200 for _, _, status, _ in retried)
        for m, k, _, body in retried:
            seen[(m, k)] = body
        server.stop()

        # Every request drawn exactly once: each member its two keys.
        draws = _draws(server, aid)
        assert len(draws) == len(requests)
        assert set(Counter(member for member, _, _ in draws.values()).values()) == {len(KEYS)}
        check_invariants(server, lottery, {b["draw_id"]: b for b in seen.values() if b})

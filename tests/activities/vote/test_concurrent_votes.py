"""240 members voting at once for the same few candidates against a 2-process server: no
member past a limit, every answered vote in the log and the counts equal to the log; then
the frozen result, recomputed from the published log, equals the database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.activities.load.harness import ROOT, Server, running_server
from tests.activities.vote._seed_votes import MEMBERS, RULES

# Each member's tries: three for the first candidate (two may pass), one for each other.
TRIES = [0, 0, 0, 1, 2, 3]


def _seed(server: Server) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests.activities.vote._seed_votes import seed_main; seed_main()",
        ],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        check=True,
        timeout=300,
    )
    seeded: dict[str, Any] = json.loads(out.stdout)
    return seeded


async def _burst(server: Server, seeded: dict[str, Any]) -> list[list[tuple[str, int, Any]]]:
    url = f"/api/v1/activities/{seeded['activity_id']}/votes"
    candidates = seeded["candidates"]
    limits = httpx.Limits(max_connections=MEMBERS, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=server.url, timeout=httpx.Timeout(180), limits=limits
    ) as client:
        gate = asyncio.Semaphore(MEMBERS)

        async def one(token: str, key: str, candidate: int) -> tuple[str, int, Any]:
            async with gate:
                resp = await client.post(
                    url,
                    json={"candidate_id": candidate},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
            return key, resp.status_code, resp.json()

        async def member(token: str) -> list[tuple[str, int, Any]]:
            tries = [(f"v{i}", candidates[c]) for i, c in enumerate(TRIES)]
            tries.append(tries[0])  # the first vote retried while it is in flight
            return list(await asyncio.gather(*(one(token, k, c) for k, c in tries)))

        return list(await asyncio.gather(*(member(t) for t in seeded["tokens"])))


@pytest.mark.slow
def test_concurrent_votes_keep_every_limit_and_the_totals_equal_the_log(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        seeded = _seed(server)
        server.start()
        answers = asyncio.run(_burst(server, seeded))

        cast: dict[int, dict[str, Any]] = {}
        refusals: Counter[str] = Counter()
        for member_answers in answers:
            by_key: dict[str, list[tuple[int, Any]]] = {}
            for key, status, body in member_answers:
                assert status < 500, body
                by_key.setdefault(key, []).append((status, body))
            ok = 0
            for key, replies in by_key.items():
                assert all(r == replies[0] for r in replies), (key, replies)
                status, body = replies[0]
                if status == 201:
                    cast[body["vote_id"]] = body
                    ok += 1
                else:
                    refusals[body["error"]["code"]] += 1
            # Two for the first candidate at most, three in all: exactly three pass.
            assert ok == RULES["votes_total"]
        assert set(refusals) <= {
            "vote.limit_per_candidate_reached",
            "vote.limit_total_reached",
        }

        aid = seeded["activity_id"]
        rows = server.query(
            "SELECT id, membership_id, candidate_id FROM activities_vote WHERE activity_id = :a",
            a=aid,
        )
        assert {r[0] for r in rows} == set(cast)
        assert all(cast[r[0]]["candidate_id"] == r[2] for r in rows)
        per_member = Counter(r[1] for r in rows)
        per_member_candidate = Counter((r[1], r[2]) for r in rows)
        assert set(per_member.values()) == {RULES["votes_total"]}
        assert len(per_member) == MEMBERS
        assert max(per_member_candidate.values()) <= RULES["votes_per_candidate_per_day"]
        counts = dict(
            server.query(
                "SELECT id, votes FROM activities_vote_candidate WHERE activity_id = :a", a=aid
            )
        )
        by_log = Counter(r[2] for r in rows)
        assert counts == {c: by_log.get(c, 0) for c in seeded["candidates"]}
        for _, scope, used, granted in server.query(
            "SELECT membership_id, scope, used, granted FROM activities_counter "
            "WHERE activity_id = :a",
            a=aid,
        ):
            assert 0 <= used <= granted, scope

        # The organiser ends and freezes it; the published log recomputes to the totals.
        staff = {"Authorization": f"Bearer {seeded['organiser']}"}
        with httpx.Client(base_url=server.url, timeout=60) as api:
            assert api.post(f"/api/v1/activities/{aid}/end", headers=staff).status_code == 200
            frozen = api.post(f"/api/v1/activities/{aid}/vote-results", headers=staff)
            assert frozen.status_code == 200, frozen.text
            lines = [
                json.loads(x) for x in api.get(f"/api/v1/public/votes/{aid}/log").text.splitlines()
            ]
        result, entries = lines[0], lines[1:]
        digest = hashlib.sha256(f"gonghui-vote-v1:{aid}".encode()).hexdigest()
        for e in entries:
            line = f"{e['n']}|{e['voter']}|{e['candidate_id']}|{e['day']}|ok"
            digest = hashlib.sha256(f"{digest}\n{line}".encode()).hexdigest()
        assert digest == result["log_hash"] == frozen.json()["log_hash"]
        assert len(entries) == MEMBERS * RULES["votes_total"]
        assert {t["candidate_id"]: t["votes"] for t in result["totals"]} == counts

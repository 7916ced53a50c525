"""Praise-vote burst: wrk votes against a 2-process server, compared with GET /api/v1/ping,
and the live ranking's staleness meanwhile.

Seeds verified members (pre-issued tokens) and a live vote of BENCH_CANDIDATES + 1 approved
candidates, each member allowed enough votes a day (BENCH_PER_MEMBER, for a day and for a
candidate) that the run's votes are votes, not refusals. wrk (64 connections) votes as the
next member each request, for one of the first BENCH_CANDIDATES candidates in turn; votes
and pings are measured as in draw_burst (rounds of ping / votes / ping, the median round
reported).

Staleness: all through the rounds a probe votes every half second for the last candidate,
which wrk never votes for, and reads the members' ranking (``GET .../ranking``, which each
server process keeps for ``RANKING_TTL_S``) every 20 ms until its count shows the vote;
the time from the vote's answer to the ranking showing it is one staleness sample
(``staleness_p50_s``, ``staleness_max_s``).

Invariants: the votes logged equal the candidates' counts, candidate by candidate; no
counter past its grant; every probe vote showed in the ranking.

Environment: BENCH_MEMBERS (20000), BENCH_CANDIDATES (50), BENCH_PER_MEMBER (1000),
BENCH_ROUNDS (3), BENCH_ROUND_S (5 s a run), BENCH_CONNECTIONS (64),
GONGHUI_BENCH_DATABASE_URL (empty: SQLite in a temp dir). Last line: one JSON object (see
bench/README.md).
"""

from __future__ import annotations

import itertools
import os
import threading
import time

import httpx

from _harness import Burst, Load, emit, measure, percentile, wrk
from _seed import LotterySeed, member_server, seed

MEMBERS = int(os.environ.get("BENCH_MEMBERS", "20000"))
CANDIDATES = int(os.environ.get("BENCH_CANDIDATES", "50"))
PER_MEMBER = int(os.environ.get("BENCH_PER_MEMBER", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = int(os.environ.get("BENCH_ROUND_S", "5"))
PROBE_EVERY_S = 0.5
GIVE_UP_S = 30.0

# After _harness.MEMBER_TOKENS_LUA (its ``tokens`` and ``counter``): the body names one of
# the candidates in turn, shifted each pass over the members so that a member's votes go
# to different candidates.
VOTE_LUA = r"""
local candidates = {%s}
function request()
  counter = counter + 1
  local headers = {}
  for key, value in pairs(wrk.headers) do headers[key] = value end
  headers["Authorization"] = "Bearer " .. tokens[(counter %% #tokens) + 1]
  local pick = (counter + math.floor(counter / #tokens)) %% #candidates
  return wrk.format(nil, nil, headers, '{"candidate_id":' .. candidates[pick + 1] .. '}')
end
"""


class Probe(threading.Thread):
    """Votes for the probe candidate and times until the ranking shows it (see above)."""

    def __init__(self, url: str, activity_id: int, candidate_id: int, tokens: list[str]) -> None:
        super().__init__(daemon=True)
        # Each probe vote by the next of these members: one account voting twice a second
        # would be challenged by risk control, as a script would.
        self.tokens = itertools.cycle(tokens)
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=30
        )
        self.activity_id = activity_id
        self.candidate_id = candidate_id
        self.samples: list[float] = []
        self.missed = 0
        self.stopping = threading.Event()

    def _count(self) -> int:
        ranking = self.client.get(f"/api/v1/activities/{self.activity_id}/ranking").json()
        for item in ranking["items"]:
            if item["candidate_id"] == self.candidate_id:
                return int(item["votes"])
        return 0

    def run(self) -> None:
        expected = self._count()
        while not self.stopping.wait(PROBE_EVERY_S):
            resp = self.client.post(
                f"/api/v1/activities/{self.activity_id}/votes",
                json={"candidate_id": self.candidate_id},
                headers={"Authorization": f"Bearer {next(self.tokens)}"},
            )
            answered = time.monotonic()
            if resp.status_code != 201:
                self.missed += 1
                continue
            expected += 1
            while self._count() < expected:
                if time.monotonic() - answered > GIVE_UP_S:
                    self.missed += 1
                    break
                time.sleep(0.02)
            else:
                self.samples.append(time.monotonic() - answered)


def main() -> None:
    server = member_server()
    activity_id, tokens, seeded = seed(
        server,
        LotterySeed(
            members=MEMBERS,
            org_code="BENCH",
            title="bench",
            stock=CANDIDATES + 1,
            free_draws_per_day=PER_MEMBER,
            kind="vote",
        ),
    )
    candidate_ids = [int(c) for c in seeded["candidates"]]  # type: ignore[attr-defined]
    voted, probe_candidate = candidate_ids[:-1], candidate_ids[-1]
    lua = VOTE_LUA % ", ".join(str(c) for c in voted)
    path = f"/api/v1/activities/{activity_id}/votes"
    try:
        server.start()

        def ping(seconds: int) -> Load:
            return wrk(
                "ping (trivial)", server.url + "/api/v1/ping", tokens=tokens, duration_s=seconds
            )

        def votes(seconds: int) -> Load:
            return wrk(
                "vote",
                server.url + path,
                method="POST",
                headers={"Content-Type": "application/json"},
                body="{}",
                lua=lua,
                tokens=tokens,
                duration_s=seconds,
            )

        probe = Probe(server.url, activity_id, probe_candidate, tokens.read_text().split()[:200])
        probe.start()
        pings, ratios = measure(
            {"ping": ping, "votes": votes}, rounds=ROUNDS, round_s=ROUND_S, warm_up_s=2
        )
        probe.stopping.set()
        probe.join(GIVE_UP_S + 5)
        burst = Burst("votes", ROUND_S, pings, ratios["votes"])
        rss = server.peak_rss_mb()
    finally:
        server.stop()

    counts = {
        c: int(server.scalar("SELECT votes FROM activities_vote_candidate WHERE id = :c", c=c))
        for c in candidate_ids
    }
    logged = {
        c: int(
            server.scalar(
                "SELECT COUNT(*) FROM activities_vote WHERE activity_id = :a AND candidate_id = :c",
                a=activity_id,
                c=c,
            )
        )
        for c in candidate_ids
    }
    over = int(
        server.scalar(
            "SELECT COUNT(*) FROM activities_counter WHERE activity_id = :a AND used > granted",
            a=activity_id,
        )
    )
    total = sum(logged.values())
    samples = probe.samples or [float("nan")]
    staleness_p50 = percentile(samples, 50)
    staleness_max = max(samples)
    invariants_ok = counts == logged and over == 0 and probe.missed == 0 and bool(probe.samples)
    burst.report()
    print(
        f"votes logged {total} over {len(candidate_ids)} candidates; counts equal the log: "
        f"{counts == logged}; counters past their grant: {over}; ranking staleness over "
        f"{len(probe.samples)} probes: p50 {staleness_p50:.2f}s, max {staleness_max:.2f}s "
        f"({probe.missed} missed)"
    )
    emit(
        {
            "workload": "vote",
            "backend": server.backend,
            **burst.figures(),
            "votes": total,
            "staleness_p50_s": round(staleness_p50, 3),
            "staleness_max_s": round(staleness_max, 3),
            "staleness_probes": len(probe.samples),
            "rounds": ROUNDS,
            "errors": burst.errors,
            "peak_rss_mb": round(rss, 1),
            "invariants_ok": bool(invariants_ok and burst.errors == 0),
        }
    )


if __name__ == "__main__":
    main()

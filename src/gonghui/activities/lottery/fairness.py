"""Verifiable draws: the randomness of each draw and the replay that checks a whole log.

roll = HMAC-SHA256(key=seed, msg="<activity>:<member>:<draw number>:<client entropy>").
The roll, read as a 256-bit integer modulo the total weight, picks a prize position by
cumulative weight. The server publishes a commitment to the seed when the lottery is
published, and the seed with the ordered draw log after the end; anyone can then replay
every draw.

Who drew is not public: ``<member>`` is the member's pseudonym in this lottery,
HMAC-SHA256(server key, "lottery-pseudonym:<activity>:<membership id>") cut to 64 bits.
The key never leaves the server, so the published log cannot be joined back to
membership ids (which are small sequential numbers: a pseudonym derived from the seed or
another public value could be reversed by trying them all), and one member's pseudonyms in
two lotteries are unrelated. The pseudonym is a roll input, so the public replay still
checks every roll, and each member's draw numbers must run 1, 2, 3... under one pseudonym.
A member can be shown their own pseudonym to find their draws in the log.

Which form a lottery uses is fixed at publication by its commitment:
SHA-256("gonghui-lottery-v2:" + seed) for pseudonyms. Lotteries published before, whose
commitment is SHA-256(seed), rolled with membership ids, and their logs keep showing them
so that they still verify.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from gonghui.keys import get_keys

_V2 = "gonghui-lottery-v2:"


def commitment(seed: str) -> str:
    """What a lottery publishes from the start: it also says that draws are pseudonymous."""
    return hashlib.sha256((_V2 + seed).encode()).hexdigest()


def _legacy_commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def pseudonymous(seed: str, seed_commitment: str | None) -> bool:
    """Whether the lottery committed to ``seed`` names its members by pseudonyms."""
    return seed_commitment == commitment(seed)


def pseudonym(*, activity_id: int, membership_id: int) -> str:
    message = f"lottery-pseudonym:{activity_id}:{membership_id}".encode()
    return hmac.new(get_keys().pii_hmac_key, message, hashlib.sha256).hexdigest()[:16]


def roll(*, seed: str, activity_id: int, member: int | str, draw_no: int, entropy: str) -> str:
    message = f"{activity_id}:{member}:{draw_no}:{entropy}".encode()
    return hmac.new(seed.encode(), message, hashlib.sha256).hexdigest()


def pick(roll_hex: str, weights: Sequence[int]) -> int:
    """The prize position ``roll_hex`` selects (weights are fixed at publication)."""
    point = int(roll_hex, 16) % sum(weights)
    for position, weight in enumerate(weights):
        if point < weight:
            return position
        point -= weight
    raise AssertionError("unreachable: point < total weight")


def verify(log: dict[str, Any]) -> list[str]:
    """Replay a published log; each mismatch is one line (empty: the log is honest)."""
    problems: list[str] = []
    seed = log.get("seed")
    if not seed:
        return ["the log has no seed (the lottery has not ended)"]
    if log["seed_commitment"] not in (commitment(seed), _legacy_commitment(seed)):
        problems.append("the seed does not match the commitment published at the start")
    activity_id = int(log["activity_id"])
    prizes = sorted(log["prizes"], key=lambda p: p["position"])
    weights = [int(p["weight"]) for p in prizes]
    stock = [int(p["initial_stock"]) for p in prizes]
    max_wins = log.get("max_wins_per_member")
    wins: dict[Any, int] = defaultdict(int)
    next_no: dict[Any, int] = defaultdict(lambda: 1)
    for i, d in enumerate(log["draws"]):
        where = f"draw #{i + 1} (member {d['member']}, number {d['draw_no']})"
        if d["draw_no"] != next_no[d["member"]]:
            problems.append(f"{where}: expected draw number {next_no[d['member']]}")
        next_no[d["member"]] = int(d["draw_no"]) + 1
        expected_roll = roll(
            seed=seed,
            activity_id=activity_id,
            member=d["member"],
            draw_no=d["draw_no"],
            entropy=d["entropy"],
        )
        if expected_roll != d["roll"]:
            problems.append(f"{where}: roll differs from HMAC(seed, inputs)")
            continue
        picked = pick(expected_roll, weights)
        if d["picked_position"] != picked:
            problems.append(f"{where}: picked {d['picked_position']}, the roll picks {picked}")
            continue
        outcome, got = d["outcome"], d["prize_position"]
        kind = prizes[picked]["kind"]
        if outcome == "won":
            if got != picked or kind == "none":
                problems.append(f"{where}: won {got} but the roll picks {picked} ({kind})")
            elif stock[picked] <= 0:
                problems.append(f"{where}: won prize {picked} after its stock ran out")
            elif max_wins is not None and wins[d["member"]] >= max_wins:
                problems.append(f"{where}: won past the cap of {max_wins} wins")
            else:
                stock[picked] -= 1
                wins[d["member"]] += 1
        elif got is not None:
            problems.append(f"{where}: outcome {outcome} but a prize is recorded")
        elif outcome == "no_prize" and kind != "none":
            problems.append(f"{where}: the roll picks a real prize, but the log says no prize")
        elif outcome == "out_of_stock" and stock[picked] > 0:
            problems.append(f"{where}: said out of stock with {stock[picked]} left")
        elif outcome == "win_cap" and (max_wins is None or wins[d["member"]] < max_wins):
            problems.append(f"{where}: said win cap reached, but it was not")
    return problems

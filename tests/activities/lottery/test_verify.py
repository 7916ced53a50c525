"""Verifiable draws: the commitment, the published log, and `gonghui lottery verify`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from gonghui.activities.lottery import fairness
from gonghui.activities.lottery.models import Draw
from gonghui.cli import app
from gonghui.db import unit_of_work
from gonghui.orgs.models import Role
from tests.activities.conftest import MemberFactory, create_activity, lottery_config
from tests.fixtures import StaffFactory, Tree


def _finished_lottery(
    api: httpx.Client, tree: Tree, op_headers: dict[str, str], make_member: MemberFactory
) -> dict[str, object]:
    config = lottery_config(
        [
            {"name": "十元券", "kind": "voucher", "weight": 3, "stock": 2, "value": 1000},
            {"name": "积分", "kind": "points", "weight": 2, "stock": 3, "value": 10},
            {"name": "谢谢参与", "kind": "none", "weight": 5},
        ],
        free_draws_per_day=3,
        max_wins_per_member=2,
    )
    activity = create_activity(api, op_headers, tree.city_a, config=config)
    proof_url = f"/api/v1/public/lotteries/{activity['id']}/proof"
    early = api.get(proof_url).json()
    assert early["seed"] is None
    assert early["draws"] == []
    assert early["seed_commitment"] == activity["seed_commitment"]
    for i in range(6):
        member = make_member(tree.city_a)
        for j in range(3):
            api.post(
                f"/api/v1/activities/{activity['id']}/draws",
                json={"entropy": f"e{i}x{j}"},
                headers=member.headers,
            )
    api.post(f"/api/v1/activities/{activity['id']}/end", headers=op_headers)
    log: dict[str, object] = api.get(proof_url).json()
    return log


def test_honest_log_verifies_and_a_tampered_one_does_not(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_member: MemberFactory,
    tmp_path: Path,
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    log = _finished_lottery(api, tree, op.headers, make_member)
    seed = log["seed"]
    assert isinstance(seed, str)
    assert (
        hashlib.sha256(f"gonghui-lottery-v2:{seed}".encode()).hexdigest() == log["seed_commitment"]
    )
    draws = log["draws"]
    assert isinstance(draws, list)
    assert len(draws) == 18
    assert sum(d["outcome"] == "won" for d in draws) <= 5

    honest = tmp_path / "honest.json"
    honest.write_text(json.dumps(log))
    result = CliRunner().invoke(app, ["lottery", "verify", str(honest)])
    assert result.exit_code == 0, result.output
    assert "18 draws verified" in result.output

    # Give a losing draw a prize it did not win.
    loser = next(d for d in draws if d["outcome"] != "won")
    loser["outcome"], loser["prize_position"] = "won", 0
    loser["picked_position"] = 0
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(log))
    result = CliRunner().invoke(app, ["lottery", "verify", str(tampered)])
    assert result.exit_code == 1
    assert "mismatch" in result.output

    # A different seed fails the commitment.
    log["seed"] = "0" * 64
    tampered.write_text(json.dumps(log))
    result = CliRunner().invoke(app, ["lottery", "verify", str(tampered)])
    assert result.exit_code == 1
    assert "commitment" in result.output


def test_the_public_log_names_members_by_a_pseudonym_of_this_lottery_only(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_member: MemberFactory
) -> None:
    op = make_staff(tree.city_a, Role.OPERATOR)
    log = _finished_lottery(api, tree, op.headers, make_member)
    draws = log["draws"]
    assert isinstance(draws, list)
    with unit_of_work(read_only=True) as session:
        by_draw = session.execute(select(Draw.membership_id, Draw.draw_no).order_by(Draw.id)).all()
    membership_ids = {m for m, _ in by_draw}
    assert len(membership_ids) == 6
    # Every draw names a 64-bit pseudonym, the same for each of a member's three draws,
    # never a membership id.
    pseudonyms = [d["member"] for d in draws]
    assert all(isinstance(p, str) and len(p) == 16 and int(p, 16) >= 0 for p in pseudonyms)
    assert not {str(m) for m in membership_ids} & set(pseudonyms)
    by_member: dict[int, set[str]] = {}
    for (membership_id, draw_no), d in zip(by_draw, draws, strict=True):
        assert d["draw_no"] == draw_no
        by_member.setdefault(membership_id, set()).add(d["member"])
    assert all(len(p) == 1 for p in by_member.values())
    assert len(set(pseudonyms)) == 6
    # Still a full replay: every roll, from the pseudonyms.
    assert fairness.verify(log) == []
    # Swapping one draw to another member's pseudonym breaks its roll.
    draws[0]["member"] = next(p for p in pseudonyms if p != draws[0]["member"])
    assert any("roll differs" in p for p in fairness.verify(log))


def test_a_lottery_published_before_pseudonyms_still_verifies_by_membership_id() -> None:
    seed = "ab" * 32
    rolls = [
        fairness.roll(seed=seed, activity_id=9, member=m, draw_no=1, entropy="e") for m in (3, 4)
    ]
    log = {
        "activity_id": 9,
        "seed": seed,
        "seed_commitment": hashlib.sha256(seed.encode()).hexdigest(),
        "max_wins_per_member": None,
        "prizes": [{"position": 0, "name": "谢谢参与", "kind": "none", "weight": 1,
                    "initial_stock": 0}],
        "draws": [
            {"member": m, "draw_no": 1, "entropy": "e", "roll": r, "picked_position": 0,
             "prize_position": None, "outcome": "no_prize"}
            for m, r in zip((3, 4), rolls, strict=True)
        ],
    }  # fmt: skip
    assert fairness.verify(log) == []
    assert fairness.pseudonymous(seed, log["seed_commitment"]) is False

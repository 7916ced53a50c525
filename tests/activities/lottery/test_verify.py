"""Verifiable draws: the commitment, the published log, and `gonghui lottery verify`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gonghui.cli import app
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
    assert hashlib.sha256(seed.encode()).hexdigest() == log["seed_commitment"]
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

"""The member benchmarks' seed: verified members with pre-issued access tokens and one live
lottery (a voucher prize with the given stock, weight 1, and no prize, weight 3), or one
voucher grab, or one mall sale with one product on the shelf (``kind``).

It runs as a child process (``python bench/_seed.py <spec>``) on the server's environment,
so that it writes where the server will read and the benchmark's own process imports none
of gonghui. Members are verified first and sign in a few seconds later: a token issued
within the clock margin of a change to its user is checked against the database
(``accounts/principal.py``), one issued after it carries the membership.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from _harness import Server

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LotterySeed:
    members: int
    org_code: str
    title: str
    stock: int
    value_cents: int = 100
    free_draws_per_day: int = 100
    # None: an activity without a budget.
    budget_cents: int | None = None
    # "voucher_grab": a voucher grab of one stock of ``stock`` coupons, ``value_cents``
    # each, ``free_draws_per_day`` per member, and every member's WeChat linked.
    # "mall": a mall sale subsidising 10 % (its budget ``budget_cents``) and one product on
    # the shelf with one SKU of ``stock`` at ``value_cents``; every member's WeChat linked.
    # "vote": a praise vote of ``stock`` approved candidates, each member allowed
    # ``free_draws_per_day`` votes a day and as many for one candidate.
    kind: str = "lottery"


def member_server(**env: str) -> Server:
    """A 2-process server for seeded members to act on, on GONGHUI_BENCH_DATABASE_URL (empty:
    SQLite in its data directory), its access tokens valid for two hours. Background work
    (the voucher sends, a stock's opening) runs as in production: in two ``gonghui worker``
    processes beside the API processes, not in them."""
    return Server(
        workers=2,
        background_workers=2,
        env={
            "GONGHUI_ENV": "test",
            "GONGHUI_DATABASE_URL": os.environ.get("GONGHUI_BENCH_DATABASE_URL", ""),
            "GONGHUI_ACCESS_TOKEN_TTL_S": "7200",
            **env,
        },
    )


def seed_lottery(server: Server, spec: LotterySeed) -> tuple[int, Path]:
    """Seed through ``server``'s settings (before or while it runs): the lottery's id and
    the tokens' file, one token a line, in ``server``'s data directory."""
    activity_id, tokens, _ = seed(server, spec)
    return activity_id, tokens


def seed(server: Server, spec: LotterySeed) -> tuple[int, Path, dict[str, object]]:
    """:func:`seed_lottery`, and the rest of what the seed made (a mall's ``sku_id``)."""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, __file__, json.dumps(asdict(spec))],
        env=server.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    result = json.loads(out)
    tokens = server.data_dir / "tokens.txt"
    tokens.write_text("\n".join(result["tokens"]) + "\n")
    print(f"seeded {spec.members} members in {time.monotonic() - started:.0f}s ({server.backend})")
    return int(result["activity_id"]), tokens, result


def _seed(spec: LotterySeed) -> None:
    """Child process: the members, their tokens and the published lottery; prints JSON."""
    from gonghui import clock
    from gonghui.accounts.models import Identity, Provider, User
    from gonghui.accounts.principal import CLOCK_MARGIN_S
    from gonghui.accounts.service import create_user
    from gonghui.accounts.tokens import start_session
    from gonghui.activities import service as activities
    from gonghui.activities.schemas import ActivityCreate
    from gonghui.db import unit_of_work
    from gonghui.members import service as members
    from gonghui.members.idnumber import check_character
    from gonghui.migrations import upgrade
    from gonghui.orgs import service as orgs
    from gonghui.orgs.models import OrgLevel
    from gonghui.tenancy import SYSTEM

    upgrade()
    users: list[int] = []
    with unit_of_work() as session:
        org_id = orgs.create_org(
            session,
            actor=SYSTEM,
            code=spec.org_code,
            name="压测",
            level=OrgLevel.CITY,
            parent_id=None,
        ).id
    for start in range(0, spec.members, 1000):
        with unit_of_work() as session:
            for n in range(start, min(start + 1000, spec.members)):
                first17 = f"440101{1900 + n // 1000:04d}0101{n % 1000:03d}"
                number = first17 + check_character(first17)
                user = create_user(session, display_name=f"m{n}")
                members.add_roster_entry(
                    session, actor=SYSTEM, org_id=org_id, name=f"会员{n}", id_number=number
                )
                members.verify(session, user_id=user.id, name=f"会员{n}", id_number=number)
                if spec.kind in ("voucher_grab", "mall"):
                    session.add(
                        Identity(
                            user_id=user.id,
                            provider=Provider.WECHAT_MINI,
                            app_id="wx_sim_mini",
                            subject=f"o-bench-{n}",
                        )
                    )
                users.append(user.id)
    # Tokens issued past the clock margin of the verification carry the membership.
    time.sleep(CLOCK_MARGIN_S + 1)
    tokens: list[str] = []
    for start in range(0, len(users), 1000):
        with unit_of_work() as session:
            for user_id in users[start : start + 1000]:
                tokens.append(
                    start_session(session, user=session.get_one(User, user_id)).access_token
                )
    with unit_of_work() as session:
        begin = clock.now() - timedelta(minutes=1)
        activity = activities.create_activity(
            session,
            actor=SYSTEM,
            data=ActivityCreate.model_validate(
                {
                    "org_id": org_id,
                    "title": spec.title,
                    "starts_at": begin.isoformat(),
                    "ends_at": (begin + timedelta(days=1)).isoformat(),
                    "budget_cents": spec.budget_cents,
                    "config": _vote(spec)
                    if spec.kind == "vote"
                    else _voucher_grab(spec)
                    if spec.kind == "voucher_grab"
                    else {
                        "kind": "mall",
                        "mall": {"subsidy_percent": 10, "member_cap_cents_per_month": 10**9},
                    }
                    if spec.kind == "mall"
                    else {
                        "kind": "lottery",
                        "lottery": {
                            "prizes": [
                                {
                                    "name": "券",
                                    "kind": "voucher",
                                    "weight": 1,
                                    "stock": spec.stock,
                                    "value": spec.value_cents,
                                },
                                {"name": "谢谢参与", "kind": "none", "weight": 3},
                            ],
                            "free_draws_per_day": spec.free_draws_per_day,
                            "max_wins_per_member": None,
                        },
                    },
                }
            ),
        )
        activities.publish(session, actor=SYSTEM, activity_id=activity.id)
        activity_id = activity.id
    seeded: dict[str, object] = {"activity_id": activity_id, "tokens": tokens}
    if spec.kind == "mall":
        seeded["sku_id"] = _mall_product(org_id, spec)
    if spec.kind == "vote":
        seeded["candidates"] = _vote_candidates(activity_id, org_id, spec.stock)
    sys.stdout.write(json.dumps(seeded))


def _mall_product(org_id: int, spec: LotterySeed) -> int:
    """One product on the shelf with one SKU; the SKU's id."""
    from gonghui.db import unit_of_work
    from gonghui.mall import catalog
    from gonghui.mall.schemas import ProductCreate
    from gonghui.tenancy import SYSTEM

    data = ProductCreate.model_validate(
        {
            "org_id": org_id,
            "name": "压测助农大米",
            "origin_region": "压测县",
            "skus": [{"name": "5kg", "price_cents": spec.value_cents, "stock": spec.stock}],
            "on_shelf": True,
        }
    )
    with unit_of_work() as session:
        product = catalog.create_product(session, actor=SYSTEM, data=data)
        session.flush()
        return int(catalog.skus_of(session, [product.id])[product.id][0].id)


def _voucher_grab(spec: LotterySeed) -> dict[str, object]:
    stock = {
        "name": "压测消费券",
        "coupon_amount_cents": spec.value_cents,
        "threshold_cents": 0,
        "max_coupons": spec.stock,
        "max_per_member": spec.free_draws_per_day,
    }
    return {"kind": "voucher_grab", "voucher_grab": {"stocks": [stock]}}


def _vote(spec: LotterySeed) -> dict[str, object]:
    per_day = spec.free_draws_per_day
    return {
        "kind": "vote",
        "vote": {"votes_per_day": per_day, "votes_per_candidate_per_day": per_day},
    }


def _vote_candidates(activity_id: int, org_id: int, n: int) -> list[int]:
    """``n`` candidates nominated by the org and approved; their ids."""
    from gonghui.activities.vote import candidates
    from gonghui.db import unit_of_work
    from gonghui.tenancy import SYSTEM

    ids = []
    with unit_of_work() as session:
        for k in range(n):
            fields = candidates.CandidateFields(name=f"候选人{k}", profile="压测")
            c = candidates.nominate(
                session, actor=SYSTEM, activity_id=activity_id, org_id=org_id, fields=fields
            )
            candidates.review(
                session,
                actor=SYSTEM,
                activity_id=activity_id,
                candidate_id=c.id,
                approve=True,
                reason=None,
            )
            ids.append(c.id)
    return ids


if __name__ == "__main__":
    _seed(LotterySeed(**json.loads(sys.argv[1])))

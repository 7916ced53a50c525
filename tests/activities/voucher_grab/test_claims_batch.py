"""A batch of claims, as the hot writer runs it, gives every claim the outcome it would have
had claimed alone, one after another in batch order (a member's second claim in the batch
after everyone's first), and leaves the same stocks, limits, org shares, claims, send tasks
and stored idempotent answers behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui import hotwrite
from gonghui.accounts.principal import MemberInfo
from gonghui.activities.models import Counter
from gonghui.activities.voucher_grab.claims import SEND_COUPON, claim, claim_many
from gonghui.activities.voucher_grab.models import OrgShare, VoucherClaim, VoucherStock
from gonghui.activities.voucher_grab.stocks import list_stocks
from gonghui.db import unit_of_work
from gonghui.errors import DomainError
from gonghui.idempotency import IdempotentResponse
from gonghui.tasks.models import Task
from tests.activities.conftest import (
    MemberFactory,
    create_activity,
    member_info,
    one_by_one,
    stored_keys,
)
from tests.activities.voucher_grab.conftest import grab, grab_config, link_wechat
from tests.fixtures import Tree


def _call(info: MemberInfo, grabbed: tuple[int, int], key: str | None = None) -> dict[str, Any]:
    activity_id, stock_id = grabbed
    return {
        "member": info,
        "activity_id": activity_id,
        "stock_id": stock_id,
        "idempotency_key": key,
    }


def _seen(outcome: Any) -> Any:
    """What a member sees of an answer, without the claim's id and time (which differ
    between the two runs)."""
    if isinstance(outcome, DomainError):
        return outcome.code
    return {k: v for k, v in outcome.items() if k not in ("id", "claimed_at")}


def _state(session: Session) -> dict[str, Any]:
    rows = session.execute
    claims = rows(
        select(
            VoucherClaim.id,
            VoucherClaim.membership_id,
            VoucherClaim.stock_id,
            VoucherClaim.org_id,
            VoucherClaim.openid,
            VoucherClaim.state,
        )
    ).all()
    by_id = {c.id: c.membership_id for c in claims}
    sends = rows(select(Task.args).where(Task.name == SEND_COUPON)).scalars()
    return {
        "stocks": sorted(rows(select(VoucherStock.id, VoucherStock.claimed)).all()),
        # A counter or a share at 0 holds nothing: a turn counted, then given back.
        "counters": sorted(
            rows(
                select(
                    Counter.activity_id, Counter.membership_id, Counter.scope, Counter.used
                ).where(Counter.used > 0)
            ).all()
        ),
        "shares": sorted(
            rows(
                select(OrgShare.activity_id, OrgShare.org_id, OrgShare.claimed).where(
                    OrgShare.claimed > 0
                )
            ).all()
        ),
        "claims": sorted(tuple(c[1:]) for c in claims),
        # Each claim's send task, queued with it: whose claim each task sends.
        "sends": sorted(by_id[args["claim_id"]] for args in sends),
        "keys": stored_keys(session),
    }


def _opening_grab(api: httpx.Client, tree: Tree, operator: dict[str, str]) -> tuple[int, int]:
    """A published grab whose stock is not open at WeChat Pay yet (no worker ran)."""
    activity = create_activity(api, operator, tree.province, config=grab_config(), title="未开券")
    with unit_of_work(read_only=True) as session:
        (stock,) = list_stocks(session, activity_id=activity["id"])
        return activity["id"], stock.id


@pytest.mark.parametrize("first_try", [False, True])
def test_a_batch_claims_as_the_same_claims_one_by_one(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    monkeypatch: pytest.MonkeyPatch,
    first_try: bool,
) -> None:
    # A writer's first try (on PostgreSQL: stocks and shares read unlocked, taken at the end).
    monkeypatch.setattr(hotwrite, "first_try", lambda session: first_try)
    main = grab(api, tree, operator, max_coupons=3, max_per_member=1, max_per_org=2)
    total = grab(api, tree, operator, max_coupons=10, max_per_member=3, limits={"limit_total": 1})
    daily = grab(api, tree, operator, max_coupons=10, max_per_member=3, limits={"limit_per_day": 1})
    paused = grab(api, tree, operator)
    moved = api.post(
        f"/api/v1/activities/{paused[0]}/voucher-stocks/{paused[1]}/pause", headers=operator
    )
    assert moved.status_code == 200, moved.text
    opening = _opening_grab(api, tree, operator)
    orgs = [tree.grassroots_a1x] * 3 + [tree.grassroots_b1, tree.district_a1] + [tree.city_a] * 4
    m = [make_member(org) for org in orgs]
    for member in m[:6] + m[7:]:
        link_wechat(member)  # m[6] has not
    with unit_of_work() as session:
        info = [member_info(session, member) for member in m]
        session.add(
            IdempotentResponse(
                membership_id=info[5].membership_id,
                key="x",
                operation="benefits.claim:1",
                body={"id": 1},
            )
        )
    calls = [
        _call(info[0], main, key="a"),  # a coupon (1 of 3), a share of A1x (1 of 2)
        _call(info[1], main),  # a coupon (2 of 3), A1x's share (2 of 2)
        _call(info[0], main, key="a"),  # a retry: the first answer again
        _call(info[2], main),  # A1x's share is gone, a coupon is not
        _call(info[0], main),  # one coupon a member
        _call(info[3], main),  # the last coupon (B1's share: 1 of 2)
        _call(info[4], main),  # none left
        _call(info[5], main, key="x"),  # the key was used for something else
        _call(info[6], main),  # WeChat not linked
        _call(info[5], paused),  # paused by the union
        _call(info[5], opening),  # not open at WeChat Pay yet
        _call(info[4], (main[0], total[1])),  # another grab's stock
        _call(info[4], (999_999, main[1])),  # no such grab
        _call(info[7], total),  # a turn (1 of 1 in all)
        _call(info[7], total),  # no turn left in all
        _call(info[8], daily),  # a turn (1 of 1 today)
        _call(info[8], daily),  # no turn left today
        _call(info[2], total),  # refused a share above; its turns were given back
    ]
    with unit_of_work() as session:
        batch = session.begin_nested()
        batched = claim_many(session, calls)
        after_batch = _state(session)
        batch.rollback()
        alone = one_by_one(session, claim, calls)
        after_alone = _state(session)
        session.rollback()

    seen = [_seen(outcome) for outcome in batched]
    assert seen == [_seen(outcome) for outcome in alone]
    assert after_batch == after_alone
    assert [s if isinstance(s, str) else s["state"] for s in seen] == [
        "sending",
        "sending",
        "sending",
        "vouchers.org_limit_reached",
        "vouchers.member_limit_reached",
        "sending",
        "vouchers.stock_empty",
        "activities.idempotency_key_reused",
        "vouchers.wechat_not_linked",
        "vouchers.stock_paused",
        "vouchers.stock_not_open",
        "vouchers.stock_not_found",
        "activity.not_found",
        "sending",
        "activities.limit_total_reached",
        "sending",
        "activities.limit_per_day_reached",
        "sending",
    ]
    assert batched[2] == batched[0]  # the retry is the stored answer, claim id and all
    assert isinstance(batched[3], DomainError)
    assert batched[3].details == {"max_per_org": 2}
    assert seen[0] == {
        "activity_id": main[0],
        "stock_id": main[1],
        "name": "十元消费券",
        "coupon_amount_cents": 1000,
        "threshold_cents": 5000,
        "state": "sending",
        "coupon_id": None,
        "sent_at": None,
        "used_at": None,
    }
    assert (main[1], 3) in after_batch["stocks"]
    assert (total[1], 2) in after_batch["stocks"]
    assert (daily[1], 1) in after_batch["stocks"]
    assert (paused[1], 0) in after_batch["stocks"]
    assert [s for s in after_batch["shares"] if s[0] == main[0]] == sorted(
        [(main[0], tree.grassroots_a1x, 2), (main[0], tree.grassroots_b1, 1)]
    )
    succeeded = sorted(
        calls[i]["member"].membership_id
        for i, s in enumerate(seen)
        if isinstance(s, dict) and i != 2
    )
    assert [c[0] for c in after_batch["claims"]] == succeeded
    assert after_batch["sends"] == succeeded  # one send task per claim, none for the refused
    # Refused members keep no turn: A1x's third member holds only their claim of `total`.
    assert [c for c in after_batch["counters"] if c[1] == info[2].membership_id] == [
        (total[0], info[2].membership_id, "limit", 1),
        (total[0], info[2].membership_id, f"stock:{total[1]}", 1),
    ]
    assert (info[0].membership_id, "a", f"vouchers.claim:{main[1]}", True) in after_batch["keys"]


@pytest.mark.parametrize("limit", ["stock", "org", "member", "total", "day"])
def test_a_batch_against_a_limit_of_its_size_takes_all_of_it_and_no_more(
    api: httpx.Client,
    tree: Tree,
    operator: dict[str, str],
    make_member: MemberFactory,
    limit: str,
) -> None:
    n = 4
    loose = 50
    rules = {
        "max_coupons": n if limit == "stock" else loose,
        "max_per_org": n if limit == "org" else loose,
        "max_per_member": n if limit == "member" else loose,
    }
    limits = {"total": {"limit_total": n}, "day": {"limit_per_day": n}}.get(limit)
    grabbed = grab(api, tree, operator, limits=limits, **rules)
    # One member claiming n + 1 times, or n + 1 members of one union claiming once each.
    alone = limit in ("member", "total", "day")
    members = [make_member(tree.grassroots_a1x) for _ in range(1 if alone else n + 1)]
    for member in members:
        link_wechat(member)
    with unit_of_work() as session:
        infos = [member_info(session, member) for member in members]
    calls = [_call(infos[0 if alone else i], grabbed) for i in range(n + 1)]
    with unit_of_work() as session:
        outcomes = claim_many(session, calls)
    refused = {
        "stock": "vouchers.stock_empty",
        "org": "vouchers.org_limit_reached",
        "member": "vouchers.member_limit_reached",
        "total": "activities.limit_total_reached",
        "day": "activities.limit_per_day_reached",
    }[limit]
    assert [_seen(o) if isinstance(o, DomainError) else o["state"] for o in outcomes] == [
        "sending"
    ] * n + [refused]
    with unit_of_work(read_only=True) as session:
        state = _state(session)
    assert state["stocks"] == [(grabbed[1], n)]
    assert state["shares"] == [(grabbed[0], tree.grassroots_a1x, n)]
    assert len(state["claims"]) == len(state["sends"]) == n
    if alone:
        turns = {scope: used for _, _, scope, used in state["counters"]}
        assert turns[f"stock:{grabbed[1]}"] == n
        if limit != "member":
            assert turns["limit"] == n


def test_a_refused_claim_in_a_batch_keeps_no_key_and_takes_nothing(
    api: httpx.Client, tree: Tree, operator: dict[str, str], make_member: MemberFactory
) -> None:
    grabbed = grab(api, tree, operator, max_coupons=1, limits={"limit_per_day": 3})
    first, second = make_member(tree.district_a1), make_member(tree.district_a1)
    for member in (first, second):
        link_wechat(member)
    with unit_of_work() as session:
        a, b = member_info(session, first), member_info(session, second)
    calls = [_call(a, grabbed, key="k"), _call(b, grabbed, key="k")]
    with unit_of_work() as session:
        outcomes = claim_many(session, calls)
    assert isinstance(outcomes[0], dict)
    assert isinstance(outcomes[1], DomainError)
    assert outcomes[1].code == "vouchers.stock_empty"
    with unit_of_work(read_only=True) as session:
        state = _state(session)
    operation = f"vouchers.claim:{grabbed[1]}"
    assert state["keys"] == [(a.membership_id, "k", operation, True)]
    assert state["stocks"] == [(grabbed[1], 1)]
    assert [c[0] for c in state["claims"]] == state["sends"] == [a.membership_id]
    assert {c[1] for c in state["counters"]} == {a.membership_id}

    # Retried in a later batch, each gets exactly its first answer: the stored one, and a
    # refusal again (its key was given up, so it was claimed afresh).
    with unit_of_work() as session:
        retried = claim_many(session, calls)
    assert retried[0] == outcomes[0]
    assert isinstance(retried[1], DomainError)
    assert retried[1].code == "vouchers.stock_empty"
    with unit_of_work(read_only=True) as session:
        assert _state(session) == state

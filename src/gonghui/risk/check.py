"""The one check every hot member action makes before its hot write: :func:`check`.

Per action it counts the account, the device (``X-Device-Id``), the address and the
network (an IPv4 /24, ``GONGHUI_RISK_IPV4_PREFIX``; an IPv6 /64, one subscriber's site)
per minute, and the distinct accounts of the network per ``network_window_s``, all in
one :func:`gonghui.ratelimit.tally` (one Redis round trip, or this process's memory:
nothing is written to the database on the way through). Then:

- past a ``refuse`` rate: 429 ``risk.too_fast``;
- past a ``challenge`` rate, too many accounts on the network (which also flags it for
  review), a network an open or confirmed flag names, or no device id: 403
  ``risk.challenge_required`` with a challenge id, unless the request carries a solved
  one (``X-Risk-Challenge`` and ``X-Risk-Answer``) or its account solved one within the
  policy's ``pass_s``.

Requests from ``GONGHUI_RISK_TRUSTED_NETWORKS`` (loopback by default) count per account
and device only. Why /24: one NAT pool, office or rented server range usually holds a
/24, so a farm rotating addresses within it is still one network, while two unrelated
households rarely share one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from starlette.concurrency import run_in_threadpool

from gonghui import ratelimit, redis_conn
from gonghui.accounts.principal import MemberInfo
from gonghui.clock import now
from gonghui.errors import InvalidInput, PermissionDenied, RateLimited
from gonghui.risk import challenges, flags, policy
from gonghui.risk.errors import RiskError
from gonghui.risk.models import FlagKind, FlagStatus
from gonghui.settings import get_settings

RATE_WINDOW_S = 60
# An account verified this recently is "fresh" (see ``Limits.fresh_account_actions``).
FRESH_S = 3600
DEVICE_ID_MAX = 64


class Action(StrEnum):
    DRAW = "draw"
    CLAIM = "claim"
    QUIZ_ATTEMPT = "quiz_attempt"
    CHECKOUT = "checkout"
    VOTE = "vote"


@dataclass(frozen=True)
class RequestContext:
    """What a request says about its client: the address the server saw (the proxy's
    ``X-Forwarded-For`` resolved by uvicorn for ``GONGHUI_TRUSTED_PROXIES`` only), the
    H5's device id, and a challenge it answers."""

    ip: str | None
    device_id: str | None = None
    challenge_id: str | None = None
    challenge_answer: str | None = None

    def __post_init__(self) -> None:
        if self.device_id is not None and not (
            8 <= len(self.device_id) <= DEVICE_ID_MAX and self.device_id.isascii()
        ):
            raise InvalidInput(RiskError.BAD_DEVICE_ID, "X-Device-Id: 8-64 ASCII characters")


class ChallengeRequired(PermissionDenied):
    """The client must solve a challenge and act again with its id and answer."""


@dataclass
class _Verdict:
    refuse: list[str] = field(default_factory=list)
    challenge: list[str] = field(default_factory=list)
    passed: bool = False
    crowded: tuple[str, int] | None = None  # (network, accounts) just past the threshold
    fresh: int | None = None  # fresh accounts' actions, just past the threshold


@lru_cache(maxsize=8)
def _trusted(
    networks: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def network_of(ip: str) -> str | None:
    """The network an address counts in; None for a trusted one (or no address)."""
    settings = get_settings()
    return _network(ip, tuple(settings.risk_trusted_networks), settings.risk_ipv4_prefix)


@lru_cache(maxsize=ratelimit.ADDRESSES_KEPT)
def _network(ip: str, trusted: tuple[str, ...], ipv4_prefix: int) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in n for n in _trusted(trusted)):
        return None
    prefix = ipv4_prefix if address.version == 4 else 64
    return str(ipaddress.ip_network((address, prefix), strict=False))


def _decide(
    action: Action, member: MemberInfo, context: RequestContext, risk: policy.ActivityRisk
) -> _Verdict:
    limits = risk.limits
    scope = f"a{risk.activity_id}" if risk.activity_id is not None else str(action)
    m = member.membership_id
    network = network_of(context.ip) if context.ip else None
    rates: list[tuple[str, policy.Rate]] = [("account", limits.account)]
    windows = [
        ratelimit.Window(f"risk:pass:{m}", max(limits.pass_s, 1), add=0),
        ratelimit.Window(f"risk:{scope}:a:{m}", RATE_WINDOW_S),
    ]
    if context.device_id is not None:
        rates.append(("device", limits.device))
        windows.append(ratelimit.Window(f"risk:{scope}:d:{context.device_id}", RATE_WINDOW_S))
    if network is not None:
        assert context.ip is not None
        rates += [("ip", limits.ip), ("network", limits.network)]
        windows += [
            ratelimit.Window(
                f"risk:{scope}:i:{ratelimit.address_bucket(context.ip)}", RATE_WINDOW_S
            ),
            ratelimit.Window(f"risk:{scope}:n:{network}", RATE_WINDOW_S),
        ]
        if limits.network_accounts is not None:
            windows.append(
                ratelimit.Window(
                    f"risk:{scope}:na:{network}", limits.network_window_s, distinct=str(m)
                )
            )
    fresh = (
        limits.fresh_account_actions is not None
        and member.verified_at is not None
        and (now() - member.verified_at).total_seconds() < FRESH_S
    )
    if fresh:
        windows.append(ratelimit.Window(f"risk:{scope}:fresh", limits.network_window_s))
    counts = ratelimit.tally(windows)
    fresh_actions = counts.pop() if fresh else 0
    verdict = _Verdict(passed=limits.pass_s > 0 and counts[0] > 0)
    if fresh_actions and fresh_actions == (limits.fresh_account_actions or 0) + 1:
        verdict.fresh = fresh_actions  # the action that crosses the threshold
    for (name, rate), count in zip(rates, counts[1:], strict=False):
        if rate.refuse is not None and count > rate.refuse:
            verdict.refuse.append(name)
        elif rate.challenge is not None and count > rate.challenge:
            verdict.challenge.append(name)
    if network is not None:
        subject = f"net:{network}"
        marked = risk.marked.get(subject)
        if marked in (FlagStatus.OPEN, FlagStatus.CONFIRMED):
            verdict.challenge.append("network_flagged")
        elif marked is None and limits.network_accounts is not None:
            accounts = counts[-1]
            if accounts > limits.network_accounts:
                verdict.challenge.append("network_accounts")
                verdict.crowded = (network, accounts)
        if context.device_id is None and limits.require_device_id:
            verdict.challenge.append("no_device_id")
    return verdict


def _settle(
    action: Action,
    member: MemberInfo,
    context: RequestContext,
    risk: policy.ActivityRisk,
    verdict: _Verdict,
) -> None:
    """What needs I/O after the counts: a flag to raise, a challenge to check."""
    if verdict.crowded is not None:
        network, accounts = verdict.crowded
        at = now()
        flags.raise_flag(
            kind=FlagKind.NETWORK_ACCOUNTS,
            subject=f"net:{network}",
            org_id=risk.org_id if risk.org_id is not None else member.org_id,
            activity_id=risk.activity_id,
            window=flags.window_of(at, risk.limits.network_window_s),
            evidence={
                "network": network,
                "accounts": accounts,
                "window_s": risk.limits.network_window_s,
                "threshold": risk.limits.network_accounts,
                "action": str(action),
                "last_ip": context.ip,
                "at": at.isoformat(),
            },
        )
    if verdict.fresh is not None:
        at = now()
        flags.raise_flag(
            kind=FlagKind.FRESH_ACCOUNTS,
            subject=f"fresh:{risk.activity_id or action}",
            org_id=risk.org_id if risk.org_id is not None else member.org_id,
            activity_id=risk.activity_id,
            window=flags.window_of(at, risk.limits.network_window_s),
            evidence={
                "actions": verdict.fresh,
                "verified_within_s": FRESH_S,
                "window_s": risk.limits.network_window_s,
                "threshold": risk.limits.fresh_account_actions,
                "action": str(action),
                "last_member": member.membership_id,
                "at": at.isoformat(),
            },
        )
    if verdict.refuse:
        raise RateLimited(
            RiskError.TOO_FAST,
            "too many requests; slow down",
            {"reasons": verdict.refuse},
            retry_after_s=RATE_WINDOW_S,
        )
    if not verdict.challenge or verdict.passed:
        return
    if context.challenge_id and context.challenge_answer is not None:
        challenges.solve(
            membership_id=member.membership_id,
            challenge_id=context.challenge_id,
            answer=context.challenge_answer,
        )
        if risk.limits.pass_s > 0:
            ratelimit.tally(
                [ratelimit.Window(f"risk:pass:{member.membership_id}", risk.limits.pass_s)]
            )
        return
    challenge_id = challenges.issue(member.membership_id)
    raise ChallengeRequired(
        RiskError.CHALLENGE_REQUIRED,
        "please confirm you are not a script: solve the picture and try again",
        {
            "challenge_id": challenge_id,
            "provider": get_settings().risk_challenge_provider,
            "image_url": f"/api/v1/risk/challenges/{challenge_id}/image",
            "reasons": verdict.challenge,
        },
    )


def check(
    action: Action, member: MemberInfo, context: RequestContext, *, activity_id: int | None
) -> None:
    """Let a member's hot action go ahead, or raise: 429 ``risk.too_fast``, 403
    ``risk.challenge_required`` (a challenge id in ``details``), or the challenge's own
    answer errors (``risk.challenge_wrong``, ``risk.challenge_expired``). Call it before
    the action's hot write; it never writes in the caller's transaction. An unknown
    activity passes here (the action's service refuses it)."""
    risk = policy.load(activity_id)
    if risk is None:
        return
    verdict = _decide(action, member, context, risk)
    _settle(action, member, context, risk, verdict)


async def check_async(
    action: Action, member: MemberInfo, context: RequestContext, *, activity_id: int | None
) -> None:
    """:func:`check` for an async handler: on the event loop when it needs no I/O (the
    settings held, counts in memory, nothing to raise or solve), else on the thread pool."""
    risk = None if redis_conn.configured() else policy.cached(activity_id)
    if risk is None:
        await run_in_threadpool(check, action, member, context, activity_id=activity_id)
        return
    verdict = _decide(action, member, context, risk)
    quiet = verdict.crowded is None and verdict.fresh is None and not verdict.refuse
    if quiet and (verdict.passed or not verdict.challenge):
        return
    await run_in_threadpool(_settle, action, member, context, risk, verdict)

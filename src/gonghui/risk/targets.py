"""The per-target rate jump: a target (a candidate of a praise vote, say) receiving far
more actions this minute than it did in the minutes before is flagged for review."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from gonghui import ratelimit, redis_conn
from gonghui.clock import now
from gonghui.risk import flags, policy
from gonghui.risk.models import FlagKind

BUCKET_S = 60
HISTORY = 10
# A target is compared with its recent rate once it has one: actions in at least this many
# of the minutes before (every candidate "jumps" from nothing when a vote opens).
MIN_MINUTES_SEEN = 3


def note_target(
    target_key: str,
    *,
    org_id: int,
    activity_id: int | None,
    factor: float = 5.0,
    min_count: int = 50,
) -> bool:
    """Count one action on ``target_key`` (e.g. ``"vote:12:candidate:7"``) and flag it
    when this minute's count passes ``min_count`` and ``factor`` times its mean over the
    ``HISTORY`` minutes before, once it had actions in ``MIN_MINUTES_SEEN`` of them. One
    tally (one Redis round trip, or memory); the flag, once per target and minute, in a
    transaction of its own. True when this call raised it."""
    jump = _count(target_key, factor=factor, min_count=min_count)
    return jump is not None and _flag(target_key, org_id, activity_id, jump)


async def note_target_async(target_key: str, *, activity_id: int) -> bool:
    """:func:`note_target` for an async handler, after the action on an activity's target
    succeeded (the activity's org is the flag's): on the event loop while the counts are
    in this process's memory and nothing is flagged, else on the thread pool."""
    risk = policy.cached(activity_id)
    if risk is None or risk.org_id is None or redis_conn.configured():
        return await run_in_threadpool(note_activity_target, target_key, activity_id)
    jump = _count(target_key, factor=5.0, min_count=50)
    if jump is None:
        return False
    return await run_in_threadpool(_flag, target_key, risk.org_id, activity_id, jump)


def note_activity_target(target_key: str, activity_id: int) -> bool:
    """:func:`note_target` after the action on an activity's target succeeded (the
    activity's org is the flag's); for a handler running on the thread pool."""
    risk = policy.load(activity_id)
    if risk is None or risk.org_id is None:  # the activity is gone: nothing to flag it to
        return False
    return note_target(target_key, org_id=risk.org_id, activity_id=activity_id)


def _count(target_key: str, *, factor: float, min_count: int) -> dict[str, Any] | None:
    """Count the action; the evidence when it is the one that crosses the threshold."""
    minute = int(now().timestamp()) // BUCKET_S
    keep = BUCKET_S * (HISTORY + 2)
    windows = [ratelimit.Window(f"risk:t:{target_key}:{minute}", keep)]
    windows += [
        ratelimit.Window(f"risk:t:{target_key}:{minute - i}", keep, add=0)
        for i in range(1, HISTORY + 1)
    ]
    current, *before = ratelimit.tally(windows)
    if sum(1 for count in before if count) < MIN_MINUTES_SEEN:
        return None
    mean = sum(before) / HISTORY
    threshold = max(float(min_count), factor * mean)
    if not (threshold < current <= threshold + 1):  # only the action that crosses it
        return None
    return {
        "minute": minute,
        "target": target_key,
        "this_minute": current,
        "mean_per_minute_before": round(mean, 2),
        "minutes_compared": HISTORY,
        "factor": factor,
    }


def _flag(target_key: str, org_id: int, activity_id: int | None, jump: dict[str, Any]) -> bool:
    evidence = dict(jump)
    minute = evidence.pop("minute")
    return flags.raise_flag(
        kind=FlagKind.TARGET_JUMP,
        subject=f"target:{target_key}",
        org_id=org_id,
        activity_id=activity_id,
        window=minute,
        evidence=evidence,
    )

"""The per-target rate jump: a target (a candidate of a praise vote, say) receiving far
more actions this minute than it did in the minutes before is flagged for review."""

from __future__ import annotations

from gonghui import ratelimit
from gonghui.clock import now
from gonghui.risk import flags
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
    minute = int(now().timestamp()) // BUCKET_S
    keep = BUCKET_S * (HISTORY + 2)
    windows = [ratelimit.Window(f"risk:t:{target_key}:{minute}", keep)]
    windows += [
        ratelimit.Window(f"risk:t:{target_key}:{minute - i}", keep, add=0)
        for i in range(1, HISTORY + 1)
    ]
    current, *before = ratelimit.tally(windows)
    if sum(1 for count in before if count) < MIN_MINUTES_SEEN:
        return False
    mean = sum(before) / HISTORY
    threshold = max(float(min_count), factor * mean)
    if not (threshold < current <= threshold + 1):  # only the action that crosses it
        return False
    return flags.raise_flag(
        kind=FlagKind.TARGET_JUMP,
        subject=f"target:{target_key}",
        org_id=org_id,
        activity_id=activity_id,
        window=minute,
        evidence={
            "target": target_key,
            "this_minute": current,
            "mean_per_minute_before": round(mean, 2),
            "minutes_compared": HISTORY,
            "factor": factor,
        },
    )

"""Risk control shared by every hot member action (draws, claims, quiz attempts, orders,
votes): rates per account, device, address and network, a captcha challenge when a client
looks automated, and anomaly flags that operators review.

- :mod:`.check`: the entry point, :func:`check` (and :func:`check_async`);
- :mod:`.policy`: an activity's limits (operators set them), kept per process;
- :mod:`.challenges` and :mod:`.captcha`: challenges and who poses them;
- :mod:`.flags`: anomaly flags, their review, and pausing an activity automatically;
- :mod:`.targets`: the per-target rate jump (a candidate's votes).
"""

from gonghui.risk.check import (
    DEVICE_ID_MAX,
    Action,
    ChallengeRequired,
    RequestContext,
    check,
    check_async,
)
from gonghui.risk.targets import note_activity_target, note_target, note_target_async

__all__ = [
    "DEVICE_ID_MAX",
    "Action",
    "ChallengeRequired",
    "RequestContext",
    "check",
    "check_async",
    "note_activity_target",
    "note_target",
    "note_target_async",
]

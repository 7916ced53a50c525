"""How busy this host's hot writer is, so that background work can give way to members.

At the minute an activity opens, members' hot writes (claims, draws, votes) and the
background work they cause (a coupon send per claim) want the same cores and, on SQLite,
the same write lock. The members' writes come first: the writer measures the share of
its time spent running batches (:class:`Meter`, per window of :data:`WINDOW_S`) and
publishes it in ``<data_dir>/hot-writer.load``; :func:`busy` reads it from any process of
the host, for a few microseconds and no database. Work that yields to it (a task kind
registered with ``hold_while=busy``, see :func:`gonghui.tasks.grouped`) waits while the
share is at least :data:`BUSY_SHARE`, within its own bound.

The figure is the host's, not the deployment's: workers on a host of their own, with no
writer there (separate workers on PostgreSQL), never find the writer busy and never wait,
which is right, as they take nothing from the members' host. A writer that stops (idle,
or killed) leaves its last figure, which counts for :data:`STALE_S` and no longer. A
figure that cannot be read (no file, a torn or foreign one) reads as not busy: yielding
is an optimisation, never a condition for work to run.
"""

from __future__ import annotations

import math
import os
import struct
import time
from pathlib import Path

from gonghui.settings import get_settings

# The writer publishes its busy share once per window, at the end of the batch that ends it.
WINDOW_S = 0.25
# A figure older than this is the figure of an idle (or gone) writer.
STALE_S = 1.0
# At least this share of the writer's time running batches is busy.
BUSY_SHARE = 0.5
# The figure as stored: the wall-clock time it was written, and the share.
_FIGURE = struct.Struct("<dd")
FILE_NAME = "hot-writer.load"


def path() -> Path:
    return get_settings().data_dir / FILE_NAME


class Meter:
    """The writer's side: :meth:`ran` after each batch with the time it took."""

    def __init__(self) -> None:
        self._fd = -1
        self._since = time.monotonic()
        self._busy_s = 0.0

    def ran(self, seconds: float) -> None:
        self._busy_s += seconds
        moment = time.monotonic()
        elapsed = moment - self._since
        if elapsed < WINDOW_S:
            return
        share = min(1.0, self._busy_s / elapsed)
        self._since, self._busy_s = moment, 0.0
        try:
            if self._fd < 0:
                target = path()
                target.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
            os.pwrite(self._fd, _FIGURE.pack(time.time(), share), 0)
        except OSError:  # a figure lost: readers find none, or an old one, and do not wait
            pass


def share(at: Path | None = None) -> float:
    """The writer's busy share of its last window, or 0.0 if it has none fresh."""
    try:
        with open(at or path(), "rb") as f:
            data = f.read(_FIGURE.size)
        written, value = _FIGURE.unpack(data)
    except (OSError, struct.error):
        return 0.0
    fresh = math.isfinite(written) and 0 <= time.time() - written < STALE_S
    return value if fresh and 0.0 <= value <= 1.0 else 0.0


def busy() -> bool:
    """Whether this host's hot writer spent at least :data:`BUSY_SHARE` of its last window
    running members' writes."""
    return share() >= BUSY_SHARE

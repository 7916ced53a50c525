"""The dispatcher's wake-up call: a transaction that makes a delivery due rings it as it
commits (:mod:`gonghui.baas.triggers.service`), and the dispatcher
(:mod:`gonghui.baas.triggers.delivery`) delivers then rather than at its next poll."""

from __future__ import annotations

import threading

due = threading.Event()


def wake() -> None:
    """Something became due: deliver it soon rather than at the next poll."""
    due.set()

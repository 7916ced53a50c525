"""Background work: the kinds of task there are, and running a worker in this process.

Every process that defers or runs tasks loads their modules first (:func:`load`), so that
each kind is registered by name (:mod:`gonghui.tasks`). ``gonghui worker`` runs a worker;
``gonghui serve`` runs one in each of its processes unless ``background_workers`` is off
(API processes of a deployment whose workers run apart; see deploy/).
"""

from __future__ import annotations

import importlib

from gonghui.settings import get_settings

# The modules that register kinds of task.
TASK_MODULES = (
    "gonghui.baas.triggers.delivery",
    "gonghui.baas.triggers.schedule",
    "gonghui.members.roster_import.upload",
    "gonghui.housekeeping",
    "gonghui.activities.voucher_grab.stocks",
    "gonghui.activities.voucher_grab.claims",
    "gonghui.mall.refunds",
    "gonghui.mall.sweep",
    "gonghui.analytics.jobs",
    "gonghui.notifications.channels",
    "gonghui.notifications.events",
    "gonghui.notifications.reminders",
    "gonghui.notifications.broadcasts",
)


def load() -> None:
    for name in TASK_MODULES:
        importlib.import_module(name)


def start(*, worker: bool | None = None) -> None:
    """Run a worker in this process when ``worker`` (default: ``background_workers``)."""
    load()
    if not (get_settings().background_workers if worker is None else worker):
        return
    from gonghui.tasks import runtime

    runtime.start()


def stop() -> None:
    from gonghui.baas.functions.invoke import close_pool
    from gonghui.tasks import runtime

    runtime.stop()
    close_pool()

"""Periodic clean-up, each a periodic task on the queue (one worker runs it every
``housekeeping_interval_s``; :mod:`gonghui.tasks`): old function logs, spent one-time
codes, members' notifications past their keeping time, old rows of the cache change
feed, ended rate-limit windows, roster imports whose process died, roster uploads left on
disk, and finished tasks. Benefits are swept more
often: vouchers past their validity expire and prizes with no address by their deadline
are forfeited.

Each task is idempotent and safe to run from several processes at once, and runs in a unit
of work of its own, so that one failing does not hold back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from gonghui import invalidation, ratelimit, tasks
from gonghui.db import unit_of_work
from gonghui.settings import get_settings
from gonghui.tasks.queue import purge_finished

log = logging.getLogger("gonghui.housekeeping")


def purge_function_logs(session: Session) -> int:
    from gonghui.baas.functions.service import purge_invocations

    return purge_invocations(session, keep_days=get_settings().functions_log_retention_days)


def purge_otp_codes(session: Session) -> int:
    from gonghui.accounts.otp import purge_expired

    return purge_expired(session)


def tidy_roster_imports(session: Session) -> int:
    from gonghui.members.roster_import import tidy_imports

    return tidy_imports(session)


def purge_tasks(session: Session) -> int:
    settings = get_settings()
    return purge_finished(
        session, done_days=settings.tasks_keep_done_days, dead_days=settings.tasks_keep_dead_days
    )


def purge_challenges(session: Session) -> int:
    from gonghui.risk.challenges import purge_expired

    return purge_expired(session)


def purge_notifications(session: Session) -> int:
    from gonghui.notifications.service import purge

    return purge(session, keep_days=get_settings().notifications_keep_days)


def purge_open_api_access(session: Session) -> int:
    from gonghui.openplatform.usage import purge

    return purge(session)


TASKS: dict[str, Callable[[Session], int]] = {
    "function_logs": purge_function_logs,
    "notifications": purge_notifications,
    "open_api_access": purge_open_api_access,
    "otp_codes": purge_otp_codes,
    "cache_changes": invalidation.purge,
    "rate_limits": ratelimit.purge_expired,
    "risk_challenges": purge_challenges,
    "roster_imports": tidy_roster_imports,
    "tasks": purge_tasks,
}


def _register(name: str, task: Callable[[Session], int]) -> None:
    def run_task() -> None:
        with unit_of_work() as session:
            touched = task(session)
        if touched:
            log.info("housekeeping", extra={"fields": {"task": name, "touched": touched}})

    tasks.periodic(f"housekeeping.{name}", every_s=lambda: get_settings().housekeeping_interval_s)(
        run_task
    )


for _name, _task in TASKS.items():
    _register(_name, _task)


@tasks.periodic("benefits.sweep", every_s=lambda: get_settings().benefits_sweep_interval_s)
def sweep_benefits() -> dict[str, int]:
    """Expire vouchers past their validity and forfeit prizes with no address by the
    deadline (each a ledger row)."""
    from gonghui.benefits.fulfilment import forfeit_unclaimed
    from gonghui.benefits.service import expire_vouchers

    with unit_of_work() as session:
        return {"vouchers": expire_vouchers(session), "prizes": forfeit_unclaimed(session)}


def run() -> dict[str, int]:
    """One pass of every clean-up task here and now (tests, the CLI); returns how many rows
    each touched (failed tasks are logged and left out)."""
    done: dict[str, int] = {}
    for name, task in TASKS.items():
        try:
            with unit_of_work() as session:
                done[name] = task(session)
        except Exception:
            log.exception("housekeeping task %s failed", name)
    return done

"""Periodic clean-up that every server process runs next to its cron scheduler
(:mod:`gonghui.background`): old function logs, spent one-time codes, old rows of the
cache change feed, ended rate-limit windows, roster imports whose process died, and
roster uploads left on disk.

Each task is idempotent and safe to run from several processes at once, and runs in a unit
of work of its own, so that one failing does not hold back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session

from gonghui import invalidation, ratelimit
from gonghui.db import unit_of_work
from gonghui.settings import get_settings

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


TASKS: dict[str, Callable[[Session], int]] = {
    "function_logs": purge_function_logs,
    "otp_codes": purge_otp_codes,
    "cache_changes": invalidation.purge,
    "rate_limits": ratelimit.purge_expired,
    "roster_imports": tidy_roster_imports,
}


def run() -> dict[str, int]:
    """One pass of every task; returns how many rows each touched (failed tasks are
    logged and left out)."""
    done: dict[str, int] = {}
    for name, task in TASKS.items():
        try:
            with unit_of_work() as session:
                done[name] = task(session)
        except Exception:
            log.exception("housekeeping task %s failed", name)
    return done

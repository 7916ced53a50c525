"""Work each server process does besides answering requests: delivering stored events
(webhooks, function triggers) and firing cron triggers. Started by the app's lifespan;
every process runs them, and the database decides which process takes which piece."""

from __future__ import annotations

from gonghui.settings import get_settings


def start() -> None:
    settings = get_settings()
    if not settings.background_workers:
        return
    from gonghui import housekeeping
    from gonghui.baas.triggers import delivery, schedule

    delivery.start(poll_s=settings.delivery_poll_s)
    schedule.start(interval_s=settings.scheduler_interval_s, housekeeping=housekeeping.run)


def stop() -> None:
    from gonghui.baas.functions.invoke import close_pool
    from gonghui.baas.triggers import delivery, schedule

    schedule.stop()
    delivery.stop()
    close_pool()

"""What each server process runs besides requests: the scheduler thread also runs
housekeeping, at start and then every ``housekeeping_interval_s``."""

from __future__ import annotations

import threading

import pytest

from gonghui import background, housekeeping
from gonghui.settings import get_settings


def test_a_starting_server_process_runs_housekeeping_on_its_scheduler_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran_on: list[str] = []
    ran = threading.Event()

    def run() -> dict[str, int]:
        ran_on.append(threading.current_thread().name)
        ran.set()
        return {}

    monkeypatch.setattr(housekeeping, "run", run)
    monkeypatch.setattr(get_settings(), "background_workers", True)
    monkeypatch.setattr(get_settings(), "scheduler_interval_s", 0.01)
    background.start()
    try:
        assert ran.wait(30)
    finally:
        background.stop()
    assert ran_on[0] == "schedules"

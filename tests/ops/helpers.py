"""Helpers the ops tests share: what ``/readyz`` answers for this run's checks."""

from __future__ import annotations

from gonghui import redis_conn


def checks(**failed: str) -> dict[str, str]:
    """Every check this run has (Redis when the run configures one), ``ok`` unless named."""
    names = ["database", "storage", "queue"] + (["redis"] if redis_conn.configured() else [])
    return {name: failed.get(name, "ok") for name in names}

"""Local simulators of outside services, mounted under ``/_sim`` outside production."""

from __future__ import annotations

from fastapi import FastAPI


def mount_simulators(app: FastAPI) -> None:
    """Each integration adds its simulator router here."""
    del app

"""What the fault tests (a dependency killed and started again under load) check of every
answer and wait for: the one error envelope, and a condition met within a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def error_code(resp: httpx.Response) -> str | None:
    """The envelope's code of an error answer (None for a success); fails the test unless
    the error is the one envelope and nothing else."""
    if resp.status_code < 400:
        return None
    body = resp.json()
    assert set(body) == {"error"}, resp.text
    assert set(body["error"]) == {"code", "message", "details"}, resp.text
    return str(body["error"]["code"])


def eventually(what: str, condition: Callable[[], bool], within_s: float) -> None:
    """Until ``condition()`` holds; fails the test if it does not within ``within_s`` (a
    deadline for a process to act by itself, not a speed)."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {within_s}s: {what}"
        time.sleep(0.05)

"""Holding this process's hot writer, so that a test queues jobs into one batch without
depending on timing: :func:`queued_together`."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from gonghui.hotwrite.writer import local_writer

# How long a test waits for what must happen at once before calling it a hang.
PATIENCE_S = 30
busy = threading.Event()
released = threading.Event()


def hold_writer(session: Session) -> str:
    """Keep this process's writer busy until the test releases it."""
    busy.set()
    assert released.wait(PATIENCE_S)
    return "held"


def reset() -> None:
    busy.clear()
    released.clear()


def queued_together(op: Any, *jobs: dict[str, Any]) -> list[Any]:
    """Run ``jobs`` of ``op`` in one batch: queued while the writer is held, released only
    once all are in its queue. Each job's result or error."""
    reset()
    held = local_writer.submit(hold_writer, {})
    assert busy.wait(PATIENCE_S)
    futures = [local_writer.submit(op, job) for job in jobs]  # each in the queue on return
    released.set()
    assert held.result(PATIENCE_S) == "held"
    return [f.exception(PATIENCE_S) or f.result(PATIENCE_S) for f in futures]

"""API shapes of the operators' queue view: the read models of :mod:`gonghui.tasks.ops`
are answered as they are (FastAPI serialises dataclasses); only the page is added here."""

from __future__ import annotations

from dataclasses import dataclass

from gonghui.tasks.ops import DeadTask


@dataclass(frozen=True)
class DeadTaskPage:
    items: list[DeadTask]
    next_before_id: int | None

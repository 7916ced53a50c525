"""The bounded number types every path, query and schema uses for ids, counts and amounts.

A number that does not fit a 64-bit database column is refused at the edge as a 422 naming
the field, instead of reaching the database driver (which raises an overflow: a 500).
Annotated with plain ``annotated_types`` constraints, the same alias works for a path
parameter, a query parameter, a form field and a model field, and shows its bounds in the
OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

MAX_BIGINT = 2**63 - 1
"""The largest value of a signed 64-bit column (SQLite INTEGER, PostgreSQL bigint)."""

MAX_AMOUNT = 10**12
"""The largest sum of money (in cents: ten billion yuan) or of points one field may hold, so
that sums and products of many of them still fit a 64-bit column."""

Id = Annotated[int, Interval(ge=1, le=MAX_BIGINT)]
"""A row id."""

Count = Annotated[int, Interval(ge=0, le=MAX_BIGINT)]
"""A count, a page size or an offset."""

Amount = Annotated[int, Interval(ge=0, le=MAX_AMOUNT)]
"""A sum of money in cents or a number of points."""


def form_int(text: object, *, least: int = 1) -> int | None:
    """A form value a page reads by hand, as an integer from ``least`` (1: an :data:`Id`; 0:
    a :data:`Count`) to :data:`MAX_BIGINT`, or None when it is not one: a bad value is
    ignored, never a 500."""
    raw = str(text or "")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    value = int(raw)
    return value if least <= value <= MAX_BIGINT else None


def form_cents(text: object) -> int | None:
    """A sum of money typed in yuan ("58", "58.5", "58.50") as cents, from 0 to
    :data:`MAX_AMOUNT`, or None when it is not one (a third decimal, a sign, an exponent)."""
    raw = str(text or "").strip()
    whole, _, fraction = raw.partition(".")
    if not (whole.isascii() and whole.isdigit()) or len(whole) > 11:
        return None
    if fraction and not (fraction.isascii() and fraction.isdigit() and len(fraction) <= 2):
        return None
    cents = int(whole) * 100 + int(fraction.ljust(2, "0") or 0)
    return cents if cents <= MAX_AMOUNT else None

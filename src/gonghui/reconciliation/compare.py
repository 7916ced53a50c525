"""Comparing our records with WeChat Pay's: plain functions over what each side says, so
that every rule of what counts as a difference is here and tested on its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from gonghui.reconciliation.models import DifferenceKind, Source


@dataclass(frozen=True)
class Difference:
    source: Source
    kind: DifferenceKind
    reference: str
    ours_cents: int | None
    theirs_cents: int | None
    note: str = ""


def cents(yuan: str) -> int | None:
    """A bill's amount ("12.30") in cents; None if it is not an amount of whole cents."""
    try:
        value = Decimal(yuan.strip()) * 100
    except InvalidOperation:
        return None
    return int(value) if value == value.to_integral_value() else None


def amounts(
    source: Source, ours: Mapping[str, int], theirs: Mapping[str, int], *, what: str
) -> list[Difference]:
    """Records by reference on both sides (``what`` names them in the notes): each one
    only here, only there, or with two amounts is a difference."""
    found: list[Difference] = []
    for reference in sorted(ours.keys() | theirs.keys()):
        mine, their = ours.get(reference), theirs.get(reference)
        if their is None:
            found.append(
                Difference(
                    source,
                    DifferenceKind.UNKNOWN_THERE,
                    reference,
                    mine,
                    None,
                    f"{what} recorded here, not in WeChat Pay's records",
                )
            )
        elif mine is None:
            found.append(
                Difference(
                    source,
                    DifferenceKind.UNKNOWN_HERE,
                    reference,
                    None,
                    their,
                    f"{what} in WeChat Pay's records, not recorded here",
                )
            )
        elif mine != their:
            found.append(
                Difference(
                    source, DifferenceKind.AMOUNT, reference, mine, their, f"{what} amounts differ"
                )
            )
    return found


def coupon_stock(
    stock_reference: str,
    *,
    used_here: Mapping[str, int],
    used_there: Mapping[str, int],
    sent_here: int,
    sent_there: int,
) -> list[Difference]:
    """One stock's coupons: the ones used on each side by coupon id (with the amount each
    took off), and how many were sent (WeChat Pay lists no unused coupon, only counts
    them)."""
    found = amounts(Source.COUPONS, used_here, used_there, what="coupon use")
    if sent_here != sent_there:
        found.append(
            Difference(
                Source.COUPONS,
                DifferenceKind.COUNT,
                stock_reference,
                None,
                None,
                f"coupons sent: {sent_here} here, {sent_there} at WeChat Pay",
            )
        )
    return found

"""Resident identity numbers (GB 11643-1999): 17 digits and a mod 11-2 check character.

Layout: 6-digit region code, 8-digit birth date (YYYYMMDD), 3-digit sequence (odd for men,
even for women), check character ``0``-``9`` or ``X`` (ISO 7064 MOD 11-2).
"""

from __future__ import annotations

import re
from datetime import date
from operator import mul

from gonghui.clock import local_day

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")
_EARLIEST_BIRTH = date(1900, 1, 1)


class IdNumberError(ValueError):
    """Why a string is not a valid resident ID number; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_character(first17: str) -> str:
    """The check character that completes 17 digits."""
    if len(first17) == 17 and first17.isascii() and first17.isdigit():
        # Roster imports check a million of these. The weights are 2^(17-i) mod 11, and
        # 13 = 2 (mod 11): read as a base-13 numeral, the digits give the weighted sum
        # over two, mod 11.
        return _CHECK[int(first17, 13) * 2 % 11]
    return _CHECK[sum(map(mul, map(int, first17), _WEIGHTS)) % 11]


def birth_date(number: str) -> date:
    digits = number[6:14]
    if len(digits) == 8 and digits.isascii() and digits.isdigit():
        return date.fromisoformat(digits)  # YYYYMMDD, in one call
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def validate(raw: str, *, today: date | None = None) -> str:
    """The normalised number (upper-case X), or :class:`IdNumberError` saying what is wrong."""
    number = raw.strip().upper()
    if not _SHAPE.match(number):
        raise IdNumberError("id_number.format", "must be 17 digits and a digit or X")
    try:
        born = birth_date(number)
    except ValueError as exc:
        raise IdNumberError("id_number.birth_date", "the birth date inside is not a date") from exc
    if not _EARLIEST_BIRTH <= born <= (today or local_day()):
        raise IdNumberError("id_number.birth_date", "the birth date inside is out of range")
    if check_character(number[:17]) != number[17]:
        raise IdNumberError("id_number.checksum", "the check character does not match")
    return number

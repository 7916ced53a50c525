"""Cells of the CSV and XLSX files we export, made safe to open in a spreadsheet.

A text cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return,
which some programs skip before one of those) is run as a formula by Excel, WPS and
LibreOffice: a member's name like ``=HYPERLINK(...)`` would act in an operator's office.
Such text is written with a leading apostrophe, which the spreadsheet shows as text
(OWASP, "CSV Injection"). Every export writes its rows through :func:`safe_row`.
"""

from __future__ import annotations

from collections.abc import Iterable

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """``text`` as a spreadsheet will show it, never run it."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def safe_row(values: Iterable[object]) -> list[object]:
    """The row with every text cell made safe; numbers, dates and empty cells unchanged."""
    return [safe_text(v) if isinstance(v, str) else v for v in values]


def unescape_text(text: str) -> str:
    """The text :func:`safe_text` escaped, for a file exported here and imported again."""
    if text.startswith("'") and text[1:].startswith(_FORMULA_STARTS):
        return text[1:]
    return text

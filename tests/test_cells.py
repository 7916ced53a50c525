"""Export cells: no text a spreadsheet would run as a formula, and what we escape comes
back unchanged when imported again."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gonghui.cells import safe_row, safe_text, unescape_text

FORMULA_STARTS = "=+-@\t\r"


@given(st.text())
def test_no_exported_text_starts_like_a_formula(text: str) -> None:
    shown = safe_text(text)
    assert not shown.startswith(tuple(FORMULA_STARTS))
    assert shown in (text, "'" + text)
    assert shown == text or text[:1] in FORMULA_STARTS


@given(st.text().filter(lambda t: not (t.startswith("'") and t[1:2] in tuple(FORMULA_STARTS))))
def test_an_escaped_text_reads_back_as_it_was(text: str) -> None:
    assert unescape_text(safe_text(text)) == text


@given(st.lists(st.one_of(st.integers(), st.floats(allow_nan=False), st.none(), st.text())))
def test_only_text_cells_change(row: list[object]) -> None:
    safe = safe_row(row)
    assert len(safe) == len(row)
    for before, after in zip(row, safe, strict=True):
        assert after == (safe_text(before) if isinstance(before, str) else before)

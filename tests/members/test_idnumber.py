"""GB 11643 resident ID numbers: the check character, property-tested against the
standard's definition (ISO 7064 MOD 11-2)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gonghui.members.idnumber import IdNumberError, check_character, validate

TODAY = date(2026, 11, 25)


def reference_check(first17: str) -> str:
    # The standard's formula: weights 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11.
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


first17s = st.builds(
    lambda region, born, seq: f"{region:06d}{born:%Y%m%d}{seq:03d}",
    st.integers(110000, 659999),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.integers(0, 999),
)


@given(first17s)
def test_a_generated_number_validates(first17: str) -> None:
    assert check_character(first17) == reference_check(first17)
    number = first17 + check_character(first17)
    assert validate(number, today=TODAY) == number
    assert validate(number.lower(), today=TODAY) == number


@given(first17s, st.integers(0, 17), st.integers(1, 10))
def test_changing_any_one_character_is_refused(first17: str, position: int, shift: int) -> None:
    number = first17 + check_character(first17)
    alphabet = "0123456789X" if position == 17 else "0123456789"
    old = alphabet.index(number[position])
    new = alphabet[(old + shift) % len(alphabet)]
    if new == number[position]:
        return
    changed = number[:position] + new + number[position + 1 :]
    # MOD 11-2 detects every single-character error; a changed birth date may be refused
    # for being no date at all before the checksum is looked at.
    with pytest.raises(IdNumberError) as refused:
        validate(changed, today=TODAY)
    assert refused.value.code in {"id_number.checksum", "id_number.birth_date"}


def _with_x(first17: str) -> str | None:
    """The same number with its last sequence digit chosen to make the check character X."""
    for digit in "0123456789":
        candidate = first17[:16] + digit
        if reference_check(candidate) == "X":
            return candidate
    return None


@given(first17s.map(_with_x).filter(lambda f: f is not None))
def test_x_check_character_in_either_case(first17: str) -> None:
    assert validate(first17 + "x", today=TODAY) == first17 + "X"
    with pytest.raises(IdNumberError, match="check character"):
        validate(first17 + "0", today=TODAY)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("44010619900101123", "id_number.format"),
        ("4401061990010112345", "id_number.format"),
        ("44010619901301123X", "id_number.birth_date"),
        ("440106" + "20991231" + "1234", "id_number.birth_date"),
        ("44010618991231123X", "id_number.birth_date"),
    ],
)
def test_malformed_numbers_say_what_is_wrong(raw: str, code: str) -> None:
    with pytest.raises(IdNumberError) as refused:
        validate(raw, today=TODAY)
    assert refused.value.code == code

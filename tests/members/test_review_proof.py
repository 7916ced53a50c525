"""A proof image for a verification review is judged from its bytes, and one that
declares more pixels than the cap is refused before it is decoded."""

from __future__ import annotations

import io

import pytest

from gonghui.errors import InvalidInput
from gonghui.members import review
from tests.fixtures import png_declaring


def test_a_small_proof_image_is_accepted_as_png() -> None:
    data, content_type, ext = review.read_proof(io.BytesIO(png_declaring(40, 30, pixels=True)))
    assert (content_type, ext, data[:4]) == ("image/png", "png", b"\x89PNG")


@pytest.mark.parametrize(
    ("width", "height", "message"),
    [
        (20_000, 20_000, "the image has more than 40000000 pixels"),
        (8_000, 8_000, "the image is 8000×8000 pixels; at most 40000000 are accepted"),
    ],
)
def test_a_proof_declaring_too_many_pixels_is_refused_with_a_clear_error(
    width: int, height: int, message: str
) -> None:
    bomb = png_declaring(width, height, pixels=width * height < 100_000_000)
    assert len(bomb) < 200_000
    with pytest.raises(InvalidInput) as refused:
        review.read_proof(io.BytesIO(bomb))
    assert (refused.value.code, refused.value.message) == ("members.proof_too_large", message)
    assert refused.value.details == [
        {"field": "proof", "code": "members.proof_too_large", "message": message}
    ]

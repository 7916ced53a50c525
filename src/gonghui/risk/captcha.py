"""Who poses a challenge and checks its answer: one protocol, the built-in image captcha
as its default implementation.

A provider is picked by ``GONGHUI_RISK_CHALLENGE_PROVIDER`` from :data:`PROVIDERS`. A
third-party captcha (a widget that hands the client a ticket, checked server to server)
plugs in as another :class:`ChallengeProvider`: ``present`` says what the client shows
(the widget's app id instead of a picture), ``check`` verifies the ticket the client
sends as its answer (through :mod:`gonghui.outbound`).
"""

from __future__ import annotations

import hmac
import io
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from gonghui.settings import get_settings

# No 0/O, 1/I/L, 2/Z, 5/S, 8/B: letters a person reads the same whichever way they look.
ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
LENGTH = 5
WIDTH, HEIGHT = 160, 60


@dataclass(frozen=True)
class Puzzle:
    """A challenge as posed: the answer (to be hashed, never stored; empty when only the
    third party knows it) and the picture to show, if any."""

    answer: str
    image_png: bytes | None


class ChallengeProvider(Protocol):
    name: str

    def pose(self) -> Puzzle:
        """A new puzzle (its answer is kept hashed by the caller)."""
        ...

    def matches(self, answer: str, stored: str, digest: Callable[[str], str]) -> bool:
        """Whether ``answer`` solves the puzzle whose answer is kept as ``stored``
        (``digest`` of it); a third party's ticket is checked with the third party."""
        ...


class ImageCaptcha:
    """Five characters drawn rotated and offset, on noise, under crossing lines, bent by a
    sine wave: cheap to make (a few ms), not worth reading by machine for one action."""

    name = "image"

    def pose(self) -> Puzzle:
        answer = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        return Puzzle(answer, render(answer))

    def matches(self, answer: str, stored: str, digest: Callable[[str], str]) -> bool:
        return hmac.compare_digest(digest(answer.strip().upper()), stored)


def _rand(a: int, b: int) -> int:
    return a + secrets.randbelow(b - a + 1)


def render(text: str) -> bytes:
    """``text`` as a distorted PNG of WIDTH×HEIGHT."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (_rand(225, 255), _rand(225, 255), _rand(225, 255)))
    draw = ImageDraw.Draw(image)
    for _ in range(250):  # speckle
        draw.point((_rand(0, WIDTH - 1), _rand(0, HEIGHT - 1)), fill=_colour(120, 220))
    font = ImageFont.load_default(size=34)
    step = (WIDTH - 20) // len(text)
    for i, char in enumerate(text):
        glyph = Image.new("RGBA", (44, 50), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((6, 2), char, font=font, fill=_colour(10, 110))
        glyph = glyph.rotate(_rand(-30, 30), resample=Image.Resampling.BICUBIC, expand=False)
        image.paste(glyph, (10 + i * step + _rand(-3, 3), _rand(0, 12)), glyph)
    for _ in range(4):  # lines across the text
        draw.line(
            [
                (_rand(0, WIDTH // 3), _rand(0, HEIGHT)),
                (_rand(WIDTH * 2 // 3, WIDTH), _rand(0, HEIGHT)),
            ],
            fill=_colour(40, 160),
            width=_rand(1, 2),
        )
    image = _wave(image)
    image = image.filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _colour(low: int, high: int) -> tuple[int, int, int]:
    return (_rand(low, high), _rand(low, high), _rand(low, high))


def _wave(image: Image.Image) -> Image.Image:
    """Shift each column up or down along a sine of random phase and period."""
    amplitude, period, phase = _rand(3, 6), _rand(40, 90), secrets.randbelow(628) / 100
    out = Image.new("RGB", image.size, image.getpixel((0, 0)))
    for x in range(WIDTH):
        dy = int(amplitude * math.sin(2 * math.pi * x / period + phase))
        out.paste(image.crop((x, 0, x + 1, HEIGHT)), (x, dy))
    return out


PROVIDERS: dict[str, ChallengeProvider] = {"image": ImageCaptcha()}


def provider() -> ChallengeProvider:
    return PROVIDERS[get_settings().risk_challenge_provider]

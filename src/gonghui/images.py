"""Opening uploaded images within a pixel cap, so that a small file that declares a huge
picture (a decompression bomb) is refused before a pixel of it is decoded.

Every Pillow decode of an upload goes through :func:`open_image`. The cap is
``GONGHUI_IMAGE_MAX_PIXELS``, checked against the size the header declares, before
``load()``; Pillow's own process-wide ``MAX_IMAGE_PIXELS`` is not relied on.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from gonghui.settings import get_settings

# Pillow warns (and carries on decoding) between its cap and twice its cap. A warning that
# lets a bomb through is an error here. Set once for the process: ``catch_warnings`` per
# call is not thread-safe, and uploads are decoded on many threads at once.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# What Pillow raises for bytes that are not an image it can read.
_UNREADABLE = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    Image.DecompressionBombWarning,
    Image.DecompressionBombError,
)


class NotAnImage(ValueError):
    """The bytes are not an image Pillow can read."""


class ImageTooLarge(ValueError):
    """The image declares more pixels than the cap."""


@contextmanager
def open_image(data: BinaryIO) -> Iterator[Image.Image]:
    """The image in ``data`` (read from its start), opened but not decoded. Raises
    :class:`NotAnImage` or :class:`ImageTooLarge`."""
    data.seek(0)
    cap = get_settings().image_max_pixels
    try:
        image = Image.open(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own check, at open, for sizes far beyond any cap we would set.
        raise ImageTooLarge(f"the image has more than {cap} pixels") from exc
    except _UNREADABLE as exc:
        raise NotAnImage(str(exc)) from exc
    with image:
        width, height = image.size
        if width * height > cap:
            raise ImageTooLarge(f"the image is {width}×{height} pixels; at most {cap} are accepted")
        try:
            yield image
        except _UNREADABLE as exc:  # the decode itself failed (truncated, corrupt)
            raise NotAnImage(str(exc)) from exc


# The formats a browser shows that uploads for web pages (product images, service icons)
# may take: Pillow's format name -> file extension, and extension -> media type.
WEB_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
WEB_MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def web_image_extension(data: bytes) -> str | None:
    """The file extension of an upload meant for a web page (``jpg``, ``png``, ``webp``),
    None for another image format; raises :class:`NotAnImage` or :class:`ImageTooLarge`."""
    with open_image(io.BytesIO(data)) as image:
        extension = WEB_FORMATS.get(image.format or "")
        image.verify()
    return extension

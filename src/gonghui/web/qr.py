"""QR codes drawn on the server as inline SVG (segno): nothing loaded from elsewhere."""

from __future__ import annotations

import segno


def qr_svg(text: str, *, scale: int = 5) -> str:
    return str(segno.make(text, micro=False).svg_inline(scale=scale, border=2))

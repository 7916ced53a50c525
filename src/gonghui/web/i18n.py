"""UI text: Simplified Chinese by default, English as the second language.

Catalogues are flat JSON files (``locales/<lang>.json``); a test checks that both hold the
same keys and that every key a template uses exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
_DIR = Path(__file__).parent / "locales"


@lru_cache
def catalogue(locale: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((_DIR / f"{locale}.json").read_text(encoding="utf-8"))
    return data


def translate(locale: str, key: str, **params: Any) -> str:
    text = catalogue(locale).get(key) or catalogue(DEFAULT_LOCALE).get(key) or key
    return text.format(**params) if params else text


def translator(locale: str) -> Callable[..., str]:
    """``t(key, **params)`` in ``locale`` (what templates and form handlers call)."""
    return partial(translate, locale)


def pick_locale(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LOCALES:
            return candidate
    if accept_language and accept_language.lower().startswith("en"):
        return "en"
    return DEFAULT_LOCALE

"""Deployment keys: from settings, or generated once into ``data/secrets/keys.json``.

The file is created with mode 0600. Losing it makes encrypted personal data unreadable
and blind indexes unmatchable, so back it up apart from the database.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gonghui.settings import get_settings

_NAMES = ("pii_hmac_key", "pii_encryption_key", "token_signing_key")


@dataclass(frozen=True)
class Keys:
    pii_hmac_key: bytes
    pii_encryption_key: bytes
    token_signing_key: bytes


def _decode(value: str) -> bytes:
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if len(raw) != 32:
        raise ValueError("each key must be 32 bytes, urlsafe-base64 encoded")
    return raw


def load_or_create(path: Path, make: Callable[[], dict[str, str]]) -> dict[str, str]:
    """The JSON object stored at ``path`` (mode 0600, its directory 0700), made by ``make``
    and stored first if there is none; processes starting at once all read one."""
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text())
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    data = make()
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    # Two processes starting at once: link() refuses to replace, so the first one wins
    # and both read the winner's keys back.
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    loaded: dict[str, str] = json.loads(path.read_text())
    return loaded


def _new_keys() -> dict[str, str]:
    return {name: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() for name in _NAMES}


@lru_cache
def get_keys() -> Keys:
    settings = get_settings()
    configured = {name: getattr(settings, name) for name in _NAMES}
    if all(configured.values()):
        values = configured
    else:
        stored = load_or_create(settings.data_dir / "secrets" / "keys.json", _new_keys)
        values = {name: configured[name] or stored[name] for name in _NAMES}
    return Keys(**{name: _decode(values[name]) for name in _NAMES})


def existing_keys() -> Keys | None:
    """The keys this deployment would use, without generating any: None when neither the
    settings nor the key file hold all of them (``gonghui restore`` checks a backup against
    them and must not create a key file as a side effect)."""
    settings = get_settings()
    configured = {name: getattr(settings, name) for name in _NAMES}
    if not all(configured.values()):
        path = settings.data_dir / "secrets" / "keys.json"
        if not path.exists():
            return None
        stored: dict[str, str] = json.loads(path.read_text())
        configured = {name: configured[name] or stored.get(name, "") for name in _NAMES}
        if not all(configured.values()):
            return None
    return Keys(**{name: _decode(configured[name]) for name in _NAMES})

"""Function secrets at rest: one AES-GCM sealed JSON object per function.

The associated data binds the ciphertext to its function, so secrets copied into another
function's row do not open. The key is the deployment's encryption key (``keys.py``).
"""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gonghui.keys import get_keys

_VERSION = b"\x01"


def _aad(function_id: int) -> bytes:
    return b"function-secrets\x00" + str(function_id).encode()


def seal_secrets(function_id: int, secrets: dict[str, str]) -> bytes:
    nonce = os.urandom(12)
    plain = json.dumps(secrets, sort_keys=True).encode()
    return (
        _VERSION
        + nonce
        + AESGCM(get_keys().pii_encryption_key).encrypt(nonce, plain, _aad(function_id))
    )


def unseal_secrets(function_id: int, blob: bytes | None) -> dict[str, str]:
    if not blob:
        return {}
    if blob[:1] != _VERSION:
        raise ValueError("unknown ciphertext version")
    plain = AESGCM(get_keys().pii_encryption_key).decrypt(blob[1:13], blob[13:], _aad(function_id))
    loaded: dict[str, str] = json.loads(plain)
    return loaded

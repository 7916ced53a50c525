"""Personal data at rest: a keyed blind index for matching, AES-GCM for authorised display.

A stolen database file reveals neither: the blind index is an HMAC-SHA256 under a key kept
outside the database, and the ciphertext is authenticated with the field name as
associated data, so a value cannot be moved into another field unnoticed. Responses show
the masked form; revealing the plain value is an audited act (see ``audit.service``).
"""

from __future__ import annotations

import hmac
import os
from enum import StrEnum
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gonghui.keys import get_keys

_VERSION = b"\x01"


class PiiField(StrEnum):
    ID_NUMBER = "id_number"
    PHONE = "phone"
    NAME = "name"


def normalize(field: PiiField, value: str) -> str:
    value = value.strip()
    if field is PiiField.ID_NUMBER:
        return value.upper()
    if field is PiiField.PHONE:
        value = value.replace(" ", "").replace("-", "")
        return value[3:] if value.startswith("+86") else value
    return value


@lru_cache
def _aead() -> AESGCM:
    return AESGCM(get_keys().pii_encryption_key)


@lru_cache
def _field_prefix(field: PiiField) -> bytes:
    return field.value.encode() + b"\x00"


def blind_index(field: PiiField, value: str) -> bytes:
    """The 32-byte keyed hash used to find a record by this value."""
    message = _field_prefix(field) + normalize(field, value).encode()
    return hmac.digest(get_keys().pii_hmac_key, message, "sha256")


def seal(field: PiiField, value: str) -> bytes:
    nonce = os.urandom(12)
    ciphertext = _aead().encrypt(nonce, normalize(field, value).encode(), _field_prefix(field))
    return _VERSION + nonce + ciphertext


def unseal(field: PiiField, blob: bytes) -> str:
    if blob[:1] != _VERSION:
        raise ValueError("unknown ciphertext version")
    return _aead().decrypt(blob[1:13], blob[13:], _field_prefix(field)).decode()


def mask(field: PiiField, value: str) -> str:
    if field is PiiField.ID_NUMBER:
        return value[:6] + "*" * max(len(value) - 10, 0) + value[-4:] if len(value) > 10 else "***"
    if field is PiiField.PHONE:
        return value[:3] + "****" + value[-4:] if len(value) >= 7 else "***"
    if len(value) <= 1:
        return "*"
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


def masked(field: PiiField, blob: bytes | None) -> str | None:
    """The display form of a sealed value, or None."""
    return None if blob is None else mask(field, unseal(field, blob))

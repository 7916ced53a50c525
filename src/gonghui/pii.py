"""Personal data at rest: a keyed blind index for matching, AES-GCM for authorised display.

A stolen database file reveals neither: the blind index is an HMAC-SHA256 under a key kept
outside the database, and the ciphertext is authenticated with the field name as
associated data, so a value cannot be moved into another field unnoticed. Responses show
the masked form; revealing the plain value is an audited act (see ``audit.service``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from enum import StrEnum
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gonghui.keys import get_keys

_VERSION = b"\x01"
_JOIN = bytearray().join


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


_FIELD_PREFIX = {f: f.value.encode() + b"\x00" for f in PiiField}


def _field_prefix(field: PiiField) -> bytes:
    return _FIELD_PREFIX[field]


def blind_index(field: PiiField, value: str) -> bytes:
    """The 32-byte keyed hash used to find a record by this value."""
    message = _field_prefix(field) + normalize(field, value).encode()
    return hmac.digest(get_keys().pii_hmac_key, message, "sha256")


def narrow_key(blind: bytes) -> int:
    """The first 4 bytes of a blind index as a signed 32-bit integer: a compact key for a
    lookup index that only finds candidates, confirmed by comparing the full blind index
    (short keys keep the index small where full 32-byte random keys make bulk inserts
    rewrite most of it)."""
    return int.from_bytes(blind[:4], "big", signed=True)


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


class BulkSealer:
    """The same blind index and ciphertext as :func:`blind_index` and :func:`seal`, for bulk
    work (roster imports): the HMAC inner and outer SHA-256 states are keyed once per field
    (RFC 2104), and nonces come from one ``os.urandom`` call per batch. Values must already
    be normalised. Picklable keys let worker processes build their own.
    """

    def __init__(self, hmac_key: bytes, encryption_key: bytes) -> None:
        self.hmac_key = hmac_key
        self.encryption_key = encryption_key
        block = (
            hmac_key.ljust(64, b"\x00")
            if len(hmac_key) <= 64
            else hashlib.sha256(hmac_key).digest().ljust(64, b"\x00")
        )
        inner_pad = bytes(b ^ 0x36 for b in block)
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        self._inner = {f: hashlib.sha256(inner_pad + _field_prefix(f)) for f in PiiField}
        self._aead = AESGCM(encryption_key)
        self._nonces = b""
        self._nonce_at = 0

    @classmethod
    def from_settings(cls) -> BulkSealer:
        keys = get_keys()
        return cls(keys.pii_hmac_key, keys.pii_encryption_key)

    def blind_index(self, field: PiiField, normalized: str) -> bytes:
        return self.index_encoded(field, normalized.encode())

    def seal(self, field: PiiField, normalized: str) -> bytes:
        return bytes(self.seal_encoded(field, normalized.encode()))

    def index_encoded(self, field: PiiField, data: bytes) -> bytes:
        """:meth:`blind_index` of a value already normalised and UTF-8 encoded."""
        inner = self._inner[field].copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def seal_encoded(self, field: PiiField, data: bytes) -> bytearray:
        """:meth:`seal` of a value already normalised and UTF-8 encoded, as a bytearray
        (built in one step; it is also what the sqlite3 module binds fastest)."""
        at = self._nonce_at
        if at >= len(self._nonces):
            self._nonces = os.urandom(12 * 4096)
            at = 0
        self._nonce_at = at + 12
        nonce = self._nonces[at : at + 12]
        return _JOIN((_VERSION, nonce, self._aead.encrypt(nonce, data, _FIELD_PREFIX[field])))


def seal_bytes(purpose: str, data: bytes) -> bytes:
    """AES-GCM for personal files (a proof image of an identity document), bound to
    ``purpose`` as associated data."""
    nonce = os.urandom(12)
    return _VERSION + nonce + _aead().encrypt(nonce, data, b"file\x00" + purpose.encode())


def unseal_bytes(purpose: str, blob: bytes) -> bytes:
    if blob[:1] != _VERSION:
        raise ValueError("unknown ciphertext version")
    return _aead().decrypt(blob[1:13], blob[13:], b"file\x00" + purpose.encode())

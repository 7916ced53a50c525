"""Staff passwords: argon2id with the library's current parameters."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gonghui.accounts.errors import AccountsError
from gonghui.errors import InvalidInput

_hasher = PasswordHasher()
# A hash to verify against when the username is unknown, so both paths cost the same.
_DUMMY = _hasher.hash("gonghui-dummy-password")

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            AccountsError.WEAK_PASSWORD, f"password must be at least {MIN_LENGTH} characters"
        )
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False

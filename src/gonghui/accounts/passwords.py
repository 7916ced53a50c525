"""Staff passwords: argon2id with RFC 9106's low-memory parameters (64 MiB, 3 passes; the
library's default), about 0.2 s a hash on a server core.

A test suite (``GONGHUI_ENV=test``) hashes with argon2's cheapest parameters instead: the
same algorithm and checks, at a fraction of a millisecond, for suites that sign in
thousands of staff. A server that others can reach refuses to start with it
(:mod:`gonghui.deployment`); a hash keeps its parameters, so a password set under either
verifies under the other.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from gonghui.accounts.errors import AccountsError
from gonghui.errors import InvalidInput
from gonghui.settings import get_settings

MIN_LENGTH = 10


@functools.cache
def _hasher(env: str) -> tuple[PasswordHasher, str]:
    """The hasher for ``env``, and a hash to verify against when the username is unknown,
    so both paths cost the same."""
    params = profiles.CHEAPEST if env == "test" else profiles.RFC_9106_LOW_MEMORY
    hasher = PasswordHasher.from_parameters(params)
    return hasher, hasher.hash("gonghui-dummy-password")


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            AccountsError.WEAK_PASSWORD, f"password must be at least {MIN_LENGTH} characters"
        )
    hasher, _ = _hasher(get_settings().env)
    return hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    hasher, dummy = _hasher(get_settings().env)
    try:
        return hasher.verify(stored_hash or dummy, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False

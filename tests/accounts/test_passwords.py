"""Staff passwords are argon2id: RFC 9106's low-memory parameters on a server, argon2's
cheapest in a test suite; either verifies a hash made under the other."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters, profiles

from gonghui.accounts import passwords
from gonghui.errors import InvalidInput
from gonghui.settings import get_settings


def _hash_under(env: str, password: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GONGHUI_ENV", env)
    get_settings.cache_clear()
    try:
        return passwords.hash_password(password)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("env", "params"),
    [
        ("development", profiles.RFC_9106_LOW_MEMORY),
        ("production", profiles.RFC_9106_LOW_MEMORY),
        ("test", profiles.CHEAPEST),
    ],
)
def test_a_hash_has_its_environments_parameters(
    env: str, params: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = _hash_under(env, "correct horse battery", monkeypatch)

    assert stored.startswith("$argon2id$")
    assert extract_parameters(stored) == params
    # A hash keeps its parameters: the test suite's checks a server's and back.
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.verify_password(stored, "correct horse batterY")


def test_an_unknown_user_or_a_short_password_never_verifies() -> None:
    assert not passwords.verify_password(None, "gonghui-dummy-password")
    assert not passwords.verify_password("not a hash", "whatever it is")
    with pytest.raises(InvalidInput):
        passwords.hash_password("short")

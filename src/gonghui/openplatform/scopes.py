"""The scopes a client may ask for, and what each lets it read.

Member scopes need a member's consent (authorization code); a client's own token (client
credentials) carries only client scopes, read within the client's org subtree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """A scope; the consent screen words it as ``oauth.scope.<name>`` (web locales)."""

    name: str
    member: bool


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope("openid", member=True),
        Scope("profile", member=True),
        Scope("membership", member=True),
        Scope("benefits:read", member=True),
        Scope("activities:read", member=False),
    )
}


def parse(scope: str | None) -> list[str]:
    """The scope names of a space-separated string, each once, in order."""
    return list(dict.fromkeys((scope or "").split()))


def unknown(names: list[str]) -> list[str]:
    return [n for n in names if n not in SCOPES]


def member_scopes(names: list[str]) -> list[str]:
    """The scopes a member grants (asked for with a code)."""
    return [n for n in names if n in SCOPES and SCOPES[n].member]


def client_scopes(names: list[str]) -> list[str]:
    """The scopes of a client's own token (client credentials): its org's data."""
    return [n for n in names if n in SCOPES and not SCOPES[n].member]

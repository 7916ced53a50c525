"""The scopes a client may ask for, and what each lets it read.

Member scopes need a member's consent (authorization code); a client's own token (client
credentials) carries only client scopes, read within the client's org subtree. A client
scope that acts for the org (``approved_by``) is carried only once a staff member holding
that permission over the client's org approved it in the console (see :mod:`.approvals`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gonghui.tenancy import Permission


@dataclass(frozen=True)
class Scope:
    """A scope; the consent screen words it as ``oauth.scope.<name>`` (web locales)."""

    name: str
    member: bool
    # The permission a staff member must hold over the client's org to approve it (and
    # still hold when it is used); None: no staff approval needed.
    approved_by: Permission | None = None


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope("openid", member=True),
        Scope("profile", member=True),
        Scope("membership", member=True),
        Scope("benefits:read", member=True),
        Scope("activities:read", member=False),
        Scope("activities:write", member=False, approved_by=Permission.ACTIVITIES_MANAGE),
        Scope("org:members:read", member=False, approved_by=Permission.MEMBERS_READ),
        # Lets ``org:members:read`` return clear values (each read audited).
        Scope("org:members:unmask", member=False, approved_by=Permission.PII_UNMASK),
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


def staff_approved(names: list[str]) -> list[str]:
    """The scopes among ``names`` that a staff member must approve."""
    return [n for n in names if n in SCOPES and SCOPES[n].approved_by is not None]

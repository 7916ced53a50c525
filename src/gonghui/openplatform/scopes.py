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
        Scope("news:read", member=False),
        Scope("org:members:read", member=False, approved_by=Permission.MEMBERS_READ),
        # Lets ``org:members:read`` return clear values (each read audited).
        Scope("org:members:unmask", member=False, approved_by=Permission.PII_UNMASK),
    )
}


BAAS_PREFIX = "baas:"
# How the reference names the family of ``baas:<app id>`` scopes.
BAAS_SCOPE = Scope(f"{BAAS_PREFIX}<app id>", member=False, approved_by=Permission.APPS_MANAGE)


def scope_of(name: str) -> Scope | None:
    """The scope named ``name``: one of :data:`SCOPES`, or ``baas:<app id>`` (a BaaS app of
    the client's subtree, read as its server would; approved by a developer of the client's
    org). None for an unknown name."""
    if name in SCOPES:
        return SCOPES[name]
    app = name.removeprefix(BAAS_PREFIX)
    if app != name and app.isascii() and app.isdigit() and app[0] != "0" and len(app) <= 18:
        return Scope(name, member=False, approved_by=BAAS_SCOPE.approved_by)
    return None


def approver_right(name: str) -> Permission | None:
    """The permission that approves ``name`` (None: not a staff-approved scope)."""
    scope = scope_of(name)
    return None if scope is None else scope.approved_by


def baas_app(name: str) -> int | None:
    """The app id of a ``baas:<app id>`` scope, else None."""
    return int(name.removeprefix(BAAS_PREFIX)) if name.startswith(BAAS_PREFIX) else None


def parse(scope: str | None) -> list[str]:
    """The scope names of a space-separated string, each once, in order."""
    return list(dict.fromkeys((scope or "").split()))


def unknown(names: list[str]) -> list[str]:
    return [n for n in names if scope_of(n) is None]


def member_scopes(names: list[str]) -> list[str]:
    """The scopes a member grants (asked for with a code)."""
    return [n for n in names if (s := scope_of(n)) is not None and s.member]


def client_scopes(names: list[str]) -> list[str]:
    """The scopes of a client's own token (client credentials): its org's data."""
    return [n for n in names if (s := scope_of(n)) is not None and not s.member]


def staff_approved(names: list[str]) -> list[str]:
    """The scopes among ``names`` that a staff member must approve."""
    return [n for n in names if (s := scope_of(n)) is not None and s.approved_by is not None]

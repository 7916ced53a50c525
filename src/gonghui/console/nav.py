"""The console's sections, each listed for the staff who can use it.

A section is listed when its page would show the staff member something to read or do:
the permission its page reads with, held at some org. A section not listed is closed to
them, every page of it (``console_staff`` refuses it with 403): a developer who types in
the mall's address is told so, not shown an empty shelf that is not the truth. Within a
section the pages still refuse or narrow what a caller may not see (tenancy.py)."""

from __future__ import annotations

from dataclasses import dataclass

from gonghui.openplatform import approvals
from gonghui.operations import service as operations
from gonghui.tenancy import Actor, Permission


@dataclass(frozen=True)
class Section:
    href: str
    label: str  # its message key, also the ``active`` key its pages set
    needs: frozenset[Permission]  # any of them held at some org; none: every staff member


def _section(href: str, label: str, *needs: Permission) -> Section:
    return Section(href, label, frozenset(needs))


SECTIONS = (
    _section("/console/", "nav.home"),
    _section("/console/orgs", "nav.orgs", Permission.ORGS_READ),
    # Everyone who reads an org reads its staff; granting roles needs STAFF_MANAGE there.
    _section("/console/staff", "nav.staff", Permission.ORGS_READ),
    _section("/console/roster", "nav.roster", Permission.MEMBERS_MANAGE),
    _section("/console/roster/entries", "nav.roster_entries", Permission.MEMBERS_READ),
    _section("/console/reviews", "nav.reviews", Permission.MEMBERS_MANAGE),
    _section("/console/activities", "nav.activities", Permission.ACTIVITIES_MANAGE),
    _section("/console/news", "nav.news", Permission.NEWS_MANAGE),
    _section("/console/risk", "nav.risk", Permission.ACTIVITIES_MANAGE),
    # A judge is any staff member an organiser puts on a panel.
    _section("/console/judging", "nav.judging"),
    _section("/console/questions", "nav.questions", Permission.ACTIVITIES_MANAGE),
    _section("/console/merchants", "nav.merchants", Permission.MERCHANTS_MANAGE),
    _section("/console/mall", "nav.mall", Permission.ACTIVITIES_MANAGE),
    _section("/console/analytics", "nav.analytics", Permission.ANALYTICS_READ),
    _section("/console/notifications", "nav.notifications", Permission.MEMBERS_READ),
    # Developers register apps there; whoever may approve a scope for an app approves it.
    _section("/console/oauth-clients", "nav.oauth", *approvals.SEES),
    _section("/console/apps", "nav.developer", Permission.APPS_MANAGE),
    _section("/console/audit", "nav.audit", Permission.AUDIT_READ),
    _section("/console/security", "nav.security"),
)
# The deployment's own pages: every org's, so a platform admin's alone.
PLATFORM_SECTIONS = (
    _section("/console/queue", "nav.queue"),
    _section("/console/reconciliation", "nav.reconciliation"),
)


def section_of(path: str) -> Section | None:
    """The section a console page belongs to: the one whose address is the longest prefix
    of ``path`` (``/console/roster/entries/7`` is the roster entries', not the roster's);
    the home page only itself; None for pages of no section (sign-in, the services)."""
    found = None
    for section in (*SECTIONS, *PLATFORM_SECTIONS):
        if section.href == "/console/":
            inside = path == section.href
        else:
            inside = path == section.href or path.startswith(section.href + "/")
        if inside and (found is None or len(section.href) > len(found.href)):
            found = section
    return found


def sections_for(actor: Actor) -> list[Section]:
    """The sections ``actor`` can use, in the console's order."""
    shown = [s for s in SECTIONS if not s.needs or any(actor.can_somewhere(p) for p in s.needs)]
    if operations.may_operate(actor):
        shown.extend(PLATFORM_SECTIONS)
    return shown

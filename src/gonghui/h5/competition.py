"""A competition on its H5 activity page: the registration form (the fields of the form
table the organiser designed), the member's entry with its files, and the published
results. The forms it posts are in :mod:`gonghui.h5.competition_forms`."""

from __future__ import annotations

from typing import Any

from gonghui.accounts.principal import MemberInfo
from gonghui.activities.competition import form, registration, results
from gonghui.activities.participation import visible_activity
from gonghui.clock import now
from gonghui.db import unit_of_work
from gonghui.errors import NotFound

# The form table's field types a member fills in on a phone; a required field of another
# type (JSON, arrays, references) cannot be answered here.
FORM_TYPES = frozenset({"string", "text", "integer", "number", "boolean", "date"})


def page_context(member: MemberInfo, activity_id: int) -> dict[str, Any]:
    """The competition's state for the member: what they may do now and their entry."""
    with unit_of_work(read_only=True) as session:
        activity = visible_activity(session, member=member, activity_id=activity_id)
        rules = registration.rules_of(activity)
        fields = registration.form_fields(session, activity=activity)
        try:
            entry = registration.my_entry(session, member=member, activity_id=activity_id)
        except NotFound:
            entry = None
        names = form.file_names(session, entry.file_ids) if entry is not None else {}
        published = results.public_results(session, activity_id=activity_id)
        ranked = entry is not None and results.is_ranked(session, entry_id=entry.id)
    instant = now()
    return {
        "contest": {
            "teams": rules.teams,
            "min_team_size": rules.min_team_size,
            "max_team_size": rules.max_team_size,
            "opens_at": rules.registration_opens_at,
            "closes_at": rules.registration_closes_at,
            "deadline": rules.submission_deadline,
            "registration_open": rules.registration_opens_at
            <= instant
            < rules.registration_closes_at,
            "registration_over": instant >= rules.registration_closes_at,
            "submission_open": instant < rules.submission_deadline,
            "labels": rules.form.labels,
            "max_files": rules.max_files,
            "fields": [f for f in fields if f.type in FORM_TYPES],
            "answerable": all(f.type in FORM_TYPES or not f.required for f in fields),
            "entry": entry,
            "files": [(i, names.get(i, "")) for i in entry.file_ids] if entry else [],
            "results": published.lines if published.published else None,
            "public_vote_id": published.public_vote_id,
            "certificate": ranked,
        }
    }


def answer_types(member: MemberInfo, activity_id: int) -> dict[str, str]:
    """The form's fields a member answers on the page: name → type."""
    with unit_of_work(read_only=True) as session:
        activity = visible_activity(session, member=member, activity_id=activity_id)
        fields = registration.form_fields(session, activity=activity)
    return {f.name: f.type for f in fields if f.type in FORM_TYPES}

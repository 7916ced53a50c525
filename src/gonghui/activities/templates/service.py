"""Saved templates: an activity's design kept by its org under a name, shared down the
org's subtree, and turned back into a draft activity through ``create_activity``.

Who sees what (:func:`tenancy.shared_down`): staff who manage activities are offered the
templates of the orgs where they hold that role and of every org above them, never a
child's (not up) nor a sibling's (not sideways). They may also open, use, rename and
delete the templates of the orgs they manage below them, listed with ``org_id``. Only
staff managing the owning org rename or delete: others who see a template are told "not
yours" (403), everyone else "not found" (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gonghui.activities import design
from gonghui.activities import service as activities
from gonghui.activities.errors import ActivitiesError
from gonghui.activities.models import Activity
from gonghui.activities.templates.models import ActivityTemplate
from gonghui.activities.templates.schemas import FormChoice
from gonghui.audit import service as audit
from gonghui.clock import now
from gonghui.errors import Conflict, InvalidInput, NotFound, PermissionDenied, field_error
from gonghui.tenancy import Actor, Permission, shared_down

MANAGE = Permission.ACTIVITIES_MANAGE
# Templates one org may keep: a picker, not a store; also bounds what one account can pile up.
MAX_PER_ORG = 200


def _audit(
    session: Session, actor: Actor, action: str, template: ActivityTemplate, **details: Any
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"activities.template_{action}",
        org_id=template.org_id,
        subject_type="activity_template",
        subject_id=template.id,
        details=details or None,
    )


def get_template(session: Session, *, actor: Actor, template_id: int) -> ActivityTemplate:
    """A template the actor may start from; not found otherwise."""
    template: ActivityTemplate | None = session.scalar(
        shared_down(
            select(ActivityTemplate).where(ActivityTemplate.id == template_id),
            actor,
            MANAGE,
            with_subtree=True,
        )
    )
    if template is None:
        raise NotFound(
            ActivitiesError.TEMPLATE_NOT_FOUND, f"activity template {template_id} not found"
        )
    return template


def _owned(session: Session, *, actor: Actor, template_id: int) -> ActivityTemplate:
    template = get_template(session, actor=actor, template_id=template_id)
    if not actor.can(MANAGE, template.org.path):
        raise PermissionDenied(
            ActivitiesError.TEMPLATE_NOT_YOURS,
            "only staff who manage the template's org may change it",
        )
    return template


def list_templates(
    session: Session,
    *,
    actor: Actor,
    org_id: int | None = None,
    kind: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[ActivityTemplate]:
    """Templates shared with the actor, newest first (``before``: the next page); with
    ``org_id``, that org's own, if the actor may see them (none otherwise)."""
    if org_id is None:
        stmt = shared_down(select(ActivityTemplate), actor, MANAGE)
    else:
        stmt = shared_down(select(ActivityTemplate), actor, MANAGE, with_subtree=True)
        stmt = stmt.where(ActivityTemplate.org_id == org_id)
    if kind is not None:
        stmt = stmt.where(ActivityTemplate.kind == kind)
    if before is not None:
        stmt = stmt.where(ActivityTemplate.id < before)
    stmt = stmt.order_by(ActivityTemplate.id.desc()).limit(min(max(limit, 1), 500))
    return list(session.scalars(stmt))


def _name_taken(name: str) -> Conflict:
    return Conflict(
        ActivitiesError.TEMPLATE_NAME_TAKEN,
        f"the org already has a template named {name!r}",
        [field_error("name", ActivitiesError.TEMPLATE_NAME_TAKEN, "already used in this org")],
    )


def _store_named(session: Session, template: ActivityTemplate, name: str) -> None:
    # The unique (org_id, name) decides between two saves racing for one name. The name is
    # set inside the savepoint: a change made before it would be flushed as it opens,
    # outside its protection, and the failure would take the whole unit of work down.
    try:
        with session.begin_nested():
            template.name = name
            session.add(template)
            session.flush()
    except IntegrityError as exc:
        raise _name_taken(name) from exc


def save_template(
    session: Session, *, actor: Actor, activity_id: int, name: str
) -> ActivityTemplate:
    """Keep ``activity_id``'s design (never its data) as ``name`` in the activity's org."""
    source = activities.get_activity(session, actor=actor, activity_id=activity_id)
    kept = session.scalar(
        select(func.count())
        .select_from(ActivityTemplate)
        .where(ActivityTemplate.org_id == source.org_id)
    )
    # Counted before the insert: two saves at once may pass the cap by one, which is harmless.
    if (kept or 0) >= MAX_PER_ORG:
        raise Conflict(
            ActivitiesError.TEMPLATE_TOO_MANY,
            f"an org keeps at most {MAX_PER_ORG} templates; delete one first",
        )
    config, left_out = design.portable_config(source.config, for_template=True)
    template = ActivityTemplate(
        org_id=source.org_id,
        kind=source.kind,
        title=source.title,
        description=source.description,
        config=config,
        eligibility=dict(source.eligibility),
        limit_total=source.limit_total,
        limit_per_day=source.limit_per_day,
        budget_cents=source.budget_cents,
        budget_points=source.budget_points,
        left_out=left_out,
        source_activity_id=source.id,
        anchor_at=source.starts_at,
        created_by=actor.user_id,
    )
    _store_named(session, template, name)
    _audit(session, actor, "save", template, name=name, source_activity_id=source.id)
    return template


def rename_template(
    session: Session, *, actor: Actor, template_id: int, name: str
) -> ActivityTemplate:
    template = _owned(session, actor=actor, template_id=template_id)
    before = template.name
    if name != before:
        _store_named(session, template, name)
        template.updated_at = now()
        _audit(session, actor, "rename", template, before=before, after=name)
    return template


def delete_template(session: Session, *, actor: Actor, template_id: int) -> None:
    """Activities made from it keep their own copy of the design."""
    template = _owned(session, actor=actor, template_id=template_id)
    _audit(session, actor, "delete", template, name=template.name)
    session.delete(template)
    session.flush()


def create_from_template(
    session: Session,
    *,
    actor: Actor,
    template_id: int,
    org_id: int,
    starts_at: datetime,
    ends_at: datetime,
    title: str | None = None,
    form: FormChoice | None = None,
) -> Activity:
    """A draft in ``org_id`` (one the actor manages) from a template they may see; the
    configuration's instants move with the start (see :func:`design.shift_dates`); a
    competition's registration form is ``form`` when given."""
    template = get_template(session, actor=actor, template_id=template_id)
    config = template.config
    if template.anchor_at is not None:
        config = design.shift_dates(config, starts_at - template.anchor_at)
    if form is not None:
        config = _with_form(config, form)
    data = activities.validated_create(
        {
            "org_id": org_id,
            "title": title or template.title,
            "description": template.description,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "config": config,
            "eligibility": template.eligibility,
            "limit_total": template.limit_total,
            "limit_per_day": template.limit_per_day,
            "budget_cents": template.budget_cents,
            "budget_points": template.budget_points,
        }
    )
    origin: dict[str, Any] = {"template_id": template.id}
    if template.left_out:
        origin["left_out"] = list(template.left_out)
    return activities.create_activity(session, actor=actor, data=data, origin=origin)


def _with_form(config: dict[str, Any], form: FormChoice) -> dict[str, Any]:
    rules = config.get("competition")
    if rules is None:
        raise InvalidInput(
            ActivitiesError.BAD_CONFIG,
            "only a competition has a registration form",
            [field_error("form", ActivitiesError.BAD_CONFIG, "not a competition's template")],
        )
    chosen = {**rules.get("form", {}), "app_id": form.app_id, "table": form.table}
    return {**config, "competition": {**rules, "form": chosen}}

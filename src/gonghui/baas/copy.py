"""App copy, configuration templates and configuration diffs.

A template is one versioned JSON document holding an app's configuration: settings,
tables with their fields, indexes, rules and permissions, plus one section per
registered hook (cloud functions, triggers, activity drafts, as those domains arrive).
It never holds rows, files, members' data or secrets; an app made from it gets new keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gonghui.audit import service as audit
from gonghui.baas import apps
from gonghui.baas.apps import AppKeys
from gonghui.baas.errors import BaasError
from gonghui.baas.models import App, DataTable, Field
from gonghui.baas.schemas import FieldSpec
from gonghui.baas.tables import schema
from gonghui.baas.tables.types import FieldType
from gonghui.errors import InvalidInput, NotFound, field_error
from gonghui.hooks import LazyModules
from gonghui.tenancy import Actor, Permission, path_within, require_org

TEMPLATE_FORMAT = "gonghui.app-template"
TEMPLATE_VERSION = 1
# Settings whose names say they hold a secret are never exported or copied.
_SECRET_WORDS = ("secret", "password", "token", "private", "credential", "apikey", "api_key")


@dataclass(frozen=True)
class ConfigSection:
    """A later domain's part of an app's configuration (functions, triggers, activities):
    ``export`` lists its items for an app; ``apply`` recreates them (as drafts) in another."""

    name: str
    export: Callable[[Session, int], list[dict[str, Any]]]
    apply: Callable[[Session, Actor, int, list[dict[str, Any]]], None]


# Sections a template always carries; empty until their domain registers a ConfigSection.
PLANNED_SECTIONS = ("functions", "triggers", "activities")
SECTION_MODULES = LazyModules("gonghui.baas.functions.template")
_sections: dict[str, ConfigSection] = {}


def register_section(section: ConfigSection) -> None:
    _sections[section.name] = section


def _public_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if not any(w in k.lower() for w in _SECRET_WORDS)}


def export_template(session: Session, *, actor: Actor, app_id: int) -> dict[str, Any]:
    SECTION_MODULES.load()
    app = apps.get_app(session, actor=actor, app_id=app_id)
    tables = schema.list_tables(session, actor=actor, app_id=app.id)
    names = {t.id: t.name for t in tables}
    template: dict[str, Any] = {
        "format": TEMPLATE_FORMAT,
        "version": TEMPLATE_VERSION,
        "app": {"name": app.name, "settings": _public_settings(app.settings)},
        "tables": [
            {
                "name": t.name,
                "permissions": t.permissions,
                "fields": [
                    {
                        "name": f.name,
                        "type": f.type.value,
                        "required": f.required,
                        "unique": f.unique,
                        "indexed": f.indexed,
                        "default": f.default,
                        "rules": f.rules,
                        "ref": names[f.ref_table_id] if f.ref_table_id else None,
                    }
                    for f in t.fields
                ],
            }
            for t in tables
        ],
    }
    for name in PLANNED_SECTIONS:
        template[name] = []
    for name, section in _sections.items():
        template[name] = section.export(session, app.id)
    return template


def _bad_template(message: str, field: str = "template") -> InvalidInput:
    return InvalidInput(
        BaasError.BAD_TEMPLATE, message, [field_error(field, BaasError.BAD_TEMPLATE, message)]
    )


def import_template(
    session: Session, *, actor: Actor, org_id: int, name: str, template: dict[str, Any]
) -> tuple[App, AppKeys]:
    """A new app in ``org_id`` configured by ``template``, with new keys and no data."""
    SECTION_MODULES.load()
    if template.get("format") != TEMPLATE_FORMAT:
        raise _bad_template(f"not a {TEMPLATE_FORMAT} document", "template.format")
    if template.get("version") != TEMPLATE_VERSION:
        raise _bad_template(f"version {TEMPLATE_VERSION} expected", "template.version")
    app_part = template.get("app") or {}
    settings = app_part.get("settings") or {}
    tables = template.get("tables") or []
    if not isinstance(settings, dict) or not isinstance(tables, list):
        raise _bad_template("app.settings is an object and tables a list")
    app, keys = apps.create_app(
        session, actor=actor, org_id=org_id, name=name, settings=_public_settings(settings)
    )
    # Tables first without their references, so that references in any order (and to
    # the table itself) resolve; then the reference fields.
    deferred: list[tuple[str, FieldSpec]] = []
    try:
        for table in tables:
            specs = [FieldSpec.model_validate(f) for f in table.get("fields") or []]
            schema.create_table(
                session,
                actor=actor,
                app_id=app.id,
                name=table["name"],
                fields=[s for s in specs if s.type is not FieldType.REFERENCE],
                permissions=table.get("permissions") or {},
            )
            deferred += [(table["name"], s) for s in specs if s.type is FieldType.REFERENCE]
        for table_name, spec in deferred:
            schema.add_field(session, actor=actor, app_id=app.id, name=table_name, spec=spec)
        _restore_field_order(session, app.id, tables)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise _bad_template(f"malformed table definition: {exc}") from None
    for section_name, section in _sections.items():
        section.apply(session, actor, app.id, list(template.get(section_name) or []))
    audit.record(
        session,
        actor=actor,
        action="baas.app.import",
        org_id=app.org_id,
        subject_type="app",
        subject_id=app.id,
        details={"tables": [t.get("name") for t in tables]},
    )
    return app, keys


def _restore_field_order(session: Session, app_id: int, tables: list[dict[str, Any]]) -> None:
    for table in tables:
        order = {f["name"]: i for i, f in enumerate(table.get("fields") or [])}
        rows = session.scalars(
            select(Field)
            .join(DataTable, DataTable.id == Field.table_id)
            .where(DataTable.app_id == app_id, DataTable.name == table["name"])
        )
        for row in rows:
            row.position = order[row.name]
    session.flush()


def copy_app(
    session: Session, *, actor: Actor, app_id: int, org_id: int, name: str
) -> tuple[App, AppKeys]:
    """Copy an app's configuration to its own org or an org below it."""
    source = apps.get_app(session, actor=actor, app_id=app_id)
    source_org = require_org(session, actor, Permission.APPS_MANAGE, source.org_id)
    target_org = require_org(session, actor, Permission.APPS_MANAGE, org_id)
    if not path_within(target_org.path, source_org.path):
        raise NotFound("org.not_found", f"org {org_id} not found below the app's org")
    template = export_template(session, actor=actor, app_id=source.id)
    app, keys = import_template(
        session, actor=actor, org_id=target_org.id, name=name, template=template
    )
    audit.record(
        session,
        actor=actor,
        action="baas.app.copy",
        org_id=app.org_id,
        subject_type="app",
        subject_id=app.id,
        details={"from_app": source.id},
    )
    return app, keys


def diff_templates(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs from ``old`` to ``new``: ``{"path", "from", "to"}`` per change."""
    changes: list[dict[str, Any]] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(f"{path}.{key}" if path else key, a.get(key), b.get(key))
        elif a != b:
            changes.append({"path": path, "from": a, "to": b})

    def keyed(template: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in template.items() if k not in ("tables", "app")}
        out["settings"] = (template.get("app") or {}).get("settings")
        out["tables"] = {
            t["name"]: {
                "permissions": t.get("permissions"),
                "fields": {f["name"]: f for f in t.get("fields") or []},
            }
            for t in template.get("tables") or []
        }
        return out

    walk("", keyed(old), keyed(new))
    return changes


def diff_apps(
    session: Session, *, actor: Actor, app_id: int, other_app_id: int
) -> list[dict[str, Any]]:
    return diff_templates(
        export_template(session, actor=actor, app_id=app_id),
        export_template(session, actor=actor, app_id=other_app_id),
    )

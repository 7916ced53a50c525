"""Apps: create, list, update, delete; client and server keys (shown once, stored hashed).

Staff holding ``apps.manage`` (the developer role) over the app's org manage it; outside
their subtree an app answers "not found".
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gonghui import invalidation
from gonghui.audit import service as audit
from gonghui.baas.errors import BaasError
from gonghui.baas.models import App
from gonghui.baas.permissions import Caller
from gonghui.clock import now
from gonghui.errors import Conflict, Unauthenticated
from gonghui.orgs.models import ORG_TREE_TOPIC
from gonghui.tenancy import Actor, Permission, get_scoped, require_org, scoped


class KeyKind(StrEnum):
    CLIENT = "client"
    SERVER = "server"


# What a key starts with: the one part of it a page may show again.
KEY_PREFIX = {KeyKind.CLIENT: "ghc_", KeyKind.SERVER: "ghs_"}


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key(kind: KeyKind) -> str:
    return KEY_PREFIX[kind] + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class AppKeys:
    client_key: str
    server_key: str


def _name_taken(session: Session, org_id: int, name: str, exclude_id: int | None = None) -> bool:
    stmt = select(App.id).where(App.org_id == org_id, App.name == name)
    if exclude_id is not None:
        stmt = stmt.where(App.id != exclude_id)
    return session.scalar(stmt) is not None


def create_app(
    session: Session, *, actor: Actor, org_id: int, name: str, settings: dict[str, Any]
) -> tuple[App, AppKeys]:
    org = require_org(session, actor, Permission.APPS_MANAGE, org_id)
    if _name_taken(session, org.id, name):
        raise Conflict(BaasError.APP_NAME_TAKEN, f"app {name} already exists in this org")
    keys = AppKeys(new_key(KeyKind.CLIENT), new_key(KeyKind.SERVER))
    app = App(
        org_id=org.id,
        name=name,
        settings=settings,
        client_key_hash=hash_key(keys.client_key),
        server_key_hash=hash_key(keys.server_key),
        created_by=actor.user_id,
    )
    session.add(app)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="baas.app.create",
        org_id=org.id,
        subject_type="app",
        subject_id=app.id,
        details={"name": name},
    )
    return app, keys


def get_app(session: Session, *, actor: Actor, app_id: int) -> App:
    return get_scoped(session, App, app_id, actor, Permission.APPS_MANAGE)


def staff_caller(session: Session, *, actor: Actor, app_id: int) -> Caller:
    """The app's developers, managing its data by hand (the console, imports and exports),
    act with the server key's rights over it, as themselves."""
    app = get_app(session, actor=actor, app_id=app_id)
    return Caller(app_id=app.id, org_id=app.org_id, org_path="", server=True, user_id=actor.user_id)


def list_apps(session: Session, *, actor: Actor, org_id: int | None = None) -> list[App]:
    stmt = scoped(select(App), actor, Permission.APPS_MANAGE)
    if org_id is not None:
        stmt = stmt.where(App.org_id == org_id)
    return list(session.scalars(stmt.order_by(App.id)))


def update_app(
    session: Session,
    *,
    actor: Actor,
    app_id: int,
    name: str | None = None,
    settings: dict[str, Any] | None = None,
) -> App:
    app = get_app(session, actor=actor, app_id=app_id)
    changed: dict[str, Any] = {}
    if name is not None and name != app.name:
        if _name_taken(session, app.org_id, name, exclude_id=app.id):
            raise Conflict(BaasError.APP_NAME_TAKEN, f"app {name} already exists in this org")
        changed["name"] = {"from": app.name, "to": name}
        app.name = name
    if settings is not None:
        changed["settings"] = sorted(set(settings) | set(app.settings))
        app.settings = settings
    app.updated_at = now()
    audit.record(
        session,
        actor=actor,
        action="baas.app.update",
        org_id=app.org_id,
        subject_type="app",
        subject_id=app.id,
        details=changed,
    )
    return app


def rotate_key(session: Session, *, actor: Actor, app_id: int, kind: KeyKind) -> str:
    """A new key of ``kind``; the old one stops working when this commits."""
    app = get_app(session, actor=actor, app_id=app_id)
    key = new_key(kind)
    if kind is KeyKind.CLIENT:
        app.client_key_hash = hash_key(key)
    else:
        app.server_key_hash = hash_key(key)
    app.updated_at = now()
    audit.record(
        session,
        actor=actor,
        action="baas.app.rotate_key",
        org_id=app.org_id,
        subject_type="app",
        subject_id=app.id,
        details={"kind": str(kind)},
    )
    invalidation.changed(session, KEY_TOPIC, str(app.id))
    return key


# Key resolution runs on every app call: held per process, as accounts.principal does for
# tokens, under the change-feed topic ``baas.app`` (key: the app id; see
# gonghui.invalidation). A rotation drops the old key at its commit in this process and
# within about a second in every other; an org moved or archived drops every key (their org
# paths). The TTL is a safety net only.
KEY_TOPIC = "baas.app"
KEY_CACHE_TTL_S = 300.0


@dataclass(frozen=True)
class AppKeyHolder:
    app_id: int
    org_id: int
    org_path: str
    kind: KeyKind


_key_cache: invalidation.TopicCache[bytes, AppKeyHolder] = invalidation.TopicCache(
    KEY_TOPIC,
    key_of=lambda _, holder: str(holder.app_id),
    ttl_s=KEY_CACHE_TTL_S,
    cleared_by=(ORG_TREE_TOPIC,),
)


def cached_key(key: str) -> AppKeyHolder | None:
    """The holder of ``key`` if this process resolved it and the feed is current (no
    database work)."""
    return _key_cache.get(hash_key(key))


def resolve_key(session: Session, key: str) -> AppKeyHolder:
    digest = hash_key(key)
    return _key_cache.read_through(session, digest, lambda: _read_holder(session, digest))


def _read_holder(session: Session, digest: bytes) -> AppKeyHolder:
    from gonghui.orgs.models import Org

    row = session.execute(
        select(App.id, App.org_id, Org.path, App.client_key_hash)
        .join(Org, Org.id == App.org_id)
        .where(or_(App.client_key_hash == digest, App.server_key_hash == digest))
    ).first()
    if row is None:
        raise Unauthenticated(BaasError.KEY_INVALID, "unknown app key")
    kind = KeyKind.CLIENT if bytes(row[3]) == digest else KeyKind.SERVER
    return AppKeyHolder(app_id=row[0], org_id=row[1], org_path=row[2], kind=kind)

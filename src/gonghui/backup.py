"""``gonghui backup`` and ``gonghui restore``: the database and every stored file in one
archive, with a manifest of checksums.

An archive is a directory (or the same packed into a ``.tar``)::

    manifest.json        format version, database kind, alembic revision, created_at,
                         every file's key, size and sha256, a fingerprint of the keys
    database/gonghui.db    SQLite: an online backup (sqlite3's backup API)
    database/gonghui.dump  PostgreSQL: ``pg_dump --format=custom``
    files/<key>          every blob of the store (local disk or the bucket)

The keys (``data_dir/secrets/keys.json`` or the ``GONGHUI_*_KEY`` settings) are never in
the archive: personal data in the database is encrypted with them, so a backup and its
keys are kept apart, and a restore without the same keys cannot read personal data. The
manifest holds only an HMAC fingerprint of them, for restore to say whether the keys
present match.

Restore checks the manifest and every checksum before it changes anything, refuses a
target database or store that holds data unless forced, then restores the database and
the files. The servers and workers must be stopped while it runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from glob import glob
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from gonghui.keys import Keys, existing_keys
from gonghui.settings import Settings, get_settings
from gonghui.storage import BlobStore, check_key, get_store

FORMAT = "gonghui-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database/gonghui.db"
PG_FILE = "database/gonghui.dump"
_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

KEYS_REMINDER = (
    "The keys are NOT in this backup. Personal data in the database is encrypted with "
    "them: keep a copy of data_dir/secrets/keys.json (or the GONGHUI_PII_HMAC_KEY, "
    "GONGHUI_PII_ENCRYPTION_KEY and GONGHUI_TOKEN_SIGNING_KEY settings) apart from the "
    "backups. A restore without the same keys cannot read personal data."
)

Say = Callable[[str], None]


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why."""


@dataclass
class BackupResult:
    path: Path
    db_kind: str
    alembic_revision: str | None
    file_count: int
    file_bytes: int
    vanished: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    db_kind: str
    alembic_revision: str | None
    file_count: int
    file_bytes: int
    removed: int
    keys: str  # "match", "differ", "missing" (none here) or "unknown" (none at backup)


def _quiet(_: str) -> None:
    pass


def keys_fingerprint(keys: Keys) -> str:
    """An HMAC of a fixed text under each key: equal for equal keys, and telling nothing
    about them."""
    mac = hmac.new(b"gonghui-backup-keys-v1", digestmod=hashlib.sha256)
    for key in (keys.pii_hmac_key, keys.pii_encryption_key, keys.token_signing_key):
        mac.update(hmac.new(key, b"gonghui-backup-keys-v1", hashlib.sha256).digest())
    return mac.hexdigest()[:32]


def _db_kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def _write(chunks: Iterable[bytes], target: Path) -> tuple[int, str]:
    """Write ``chunks`` to ``target`` (created, mode 0600, fsynced); size and sha256."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return size, digest.hexdigest()


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in _read(path):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _checked(path: Path, size: int, sha256: str, label: str) -> Iterator[bytes]:
    """The file's bytes, raising before the last chunk is handed on if they are not the
    ones the manifest names (so a store never keeps a mismatched blob)."""
    digest = hashlib.sha256()
    seen = 0
    held: bytes | None = None
    for chunk in _read(path):
        digest.update(chunk)
        seen += len(chunk)
        if held is not None:
            yield held
        held = chunk
    if seen != size or digest.hexdigest() != sha256:
        raise BackupError(f"{label}: checksum mismatch (the archive changed while restoring)")
    if held is not None:
        yield held


# --- the database -----------------------------------------------------------------------


def _revision_of(url: str) -> str | None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except Exception:
                return None
    finally:
        engine.dispose()


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.resolved_database_url).database
    if not database:
        raise BackupError("the SQLite database URL names no file")
    return Path(database)


def _backup_sqlite(settings: Settings, target: Path) -> None:
    source_path = _sqlite_path(settings)
    if not source_path.exists():
        raise BackupError(f"no database at {source_path}")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    source = sqlite3.connect(source_path, timeout=30)
    try:
        dest = sqlite3.connect(target)
        try:
            # One step: a consistent snapshot under one read transaction (WAL: writers go on).
            source.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dest.close()
    finally:
        source.close()
    os.chmod(target, 0o600)


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(path, timeout=30)
    try:
        row = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchone()
        return bool(row[0])
    finally:
        conn.close()


def _restore_sqlite(settings: Settings, source: Path, size: int, sha256: str) -> None:
    target = _sqlite_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore-{os.getpid()}")
    try:
        _write(_checked(source, size, sha256, SQLITE_FILE), tmp)
        # A write-ahead log left by the database this replaces would be replayed into it.
        for suffix in ("-wal", "-shm", "-journal"):
            target.with_name(target.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def pg_binary(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: the newest of Debian's /usr/lib/postgresql/*/bin
    (a dump needs a client at least as new as the server), else the one on PATH."""

    def version(path: str) -> tuple[int, ...]:
        number = Path(path).parent.name
        return tuple(int(p) for p in re.findall(r"\d+", number))

    for directory in sorted(glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client (postgresql-client)")
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the SQLAlchemy URL, the password in the environment
    (not on a command line other users can read)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _backup_pg(settings: Settings, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    dsn, env = _libpq(settings.resolved_database_url)
    command = [pg_binary("pg_dump"), "--format=custom", "--file", str(target), "--dbname", dsn]
    _run(command, env, "pg_dump")
    os.chmod(target, 0o600)


def _pg_has_tables(url: str) -> bool:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            count = conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
            ).scalar()
            return bool(count)
    finally:
        engine.dispose()


def _restore_pg(settings: Settings, source: Path, size: int, sha256: str, force: bool) -> None:
    url = settings.resolved_database_url
    if _hash_file(source) != (size, sha256):
        raise BackupError(f"{PG_FILE}: checksum mismatch (the archive changed while restoring)")
    if force:
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                schema = conn.execute(text("SELECT current_schema()")).scalar()
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        finally:
            engine.dispose()
    dsn, env = _libpq(url)
    command = [
        pg_binary("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        "--dbname",
        dsn,
        str(source),
    ]
    _run(command, env, "pg_restore")


# --- archives -----------------------------------------------------------------------------


def _is_tar(path: Path) -> bool:
    return path.name.endswith(".tar")


def _version() -> str:
    try:
        return metadata.version("gonghui")
    except metadata.PackageNotFoundError:
        return "unknown"


def backup(
    out: Path,
    *,
    settings: Settings | None = None,
    store: BlobStore | None = None,
    say: Say = _quiet,
) -> BackupResult:
    """Write an archive of the configured database and store to ``out`` (a directory, or a
    tar when the name ends in ``.tar``); ``out`` must not exist yet. The archive appears
    under its name only once complete."""
    settings = settings or get_settings()
    store = store or get_store()
    if out.exists():
        raise BackupError(f"{out} already exists: give a new name")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory")
    kind = _db_kind(settings)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(staging, 0o700)
    try:
        # The database first, then the files: a blob is stored before the row naming it
        # commits, so every file the snapshot refers to exists when the files are copied
        # (unless it is deleted meanwhile: those are reported as vanished).
        say(f"database ({kind})...")
        if kind == "sqlite":
            db_file = SQLITE_FILE
            _backup_sqlite(settings, staging / db_file)
            revision = _revision_of(f"sqlite:///{staging / db_file}")
        else:
            db_file = PG_FILE
            revision = _revision_of(settings.resolved_database_url)
            _backup_pg(settings, staging / db_file)
        db_size, db_sha = _hash_file(staging / db_file)

        say("files...")
        entries: list[dict[str, Any]] = []
        vanished: list[str] = []
        for key in store.keys():
            try:
                size, sha256 = _write(store.iter_bytes(key), staging / "files" / key)
            except FileNotFoundError:
                (staging / "files" / key).unlink(missing_ok=True)
                vanished.append(key)
                continue
            entries.append({"key": key, "size": size, "sha256": sha256})
        keys = existing_keys()
        total = sum(e["size"] for e in entries)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "gonghui_version": _version(),
            "database": {
                "kind": kind,
                "file": db_file,
                "size": db_size,
                "sha256": db_sha,
                "alembic_revision": revision,
            },
            "storage_backend": settings.storage_backend,
            "file_count": len(entries),
            "file_bytes": total,
            "files": entries,
            "keys_fingerprint": keys_fingerprint(keys) if keys else None,
        }
        _write([json.dumps(manifest, ensure_ascii=False, indent=1).encode()], staging / MANIFEST)
        if _is_tar(out):
            packed = staging.with_name(staging.name + ".tar")
            with tarfile.open(packed, "w") as tar:
                for child in sorted(staging.iterdir()):
                    tar.add(child, arcname=child.name)
            os.chmod(packed, 0o600)
            os.replace(packed, out)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            staging.with_name(staging.name + ".tar").unlink()
    return BackupResult(
        path=out,
        db_kind=kind,
        alembic_revision=revision,
        file_count=len(entries),
        file_bytes=total,
        vanished=vanished,
    )


def _bad(message: str) -> BackupError:
    return BackupError(f"not a usable gonghui backup: {message}")


def _load_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise _bad(f"{MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"{MANIFEST} is damaged ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(f"{MANIFEST} is not a gonghui backup manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise _bad(f"format version {version!r}; this gonghui reads version {FORMAT_VERSION}")
    try:
        database = manifest["database"]
        if database["kind"] not in ("sqlite", "postgresql"):
            raise ValueError(f"database kind {database['kind']!r}")
        if database["file"] != {"sqlite": SQLITE_FILE, "postgresql": PG_FILE}[database["kind"]]:
            raise ValueError(f"database file {database['file']!r}")
        _sized(database)
        files = manifest["files"]
        if not isinstance(files, list) or manifest["file_count"] != len(files):
            raise ValueError("file_count does not match the file list")
        for entry in files:
            check_key(entry["key"])
            _sized(entry)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad(f"{MANIFEST} is damaged ({exc})") from exc
    return manifest


def _sized(entry: dict[str, Any]) -> None:
    if not isinstance(entry["size"], int) or entry["size"] < 0:
        raise ValueError(f"bad size {entry['size']!r}")
    if not isinstance(entry["sha256"], str) or not _SHA256.match(entry["sha256"]):
        raise ValueError(f"bad sha256 {entry['sha256']!r}")


def _verify_tree(root: Path, say: Say) -> dict[str, Any]:
    manifest = _load_manifest(root)
    database = manifest["database"]
    checks = [(database["file"], database)] + [(f"files/{e['key']}", e) for e in manifest["files"]]
    say(f"checking {len(checks)} checksums...")
    for relative, entry in checks:
        path = root / relative
        if not path.is_file():
            raise _bad(f"{relative} is missing")
        if _hash_file(path) != (entry["size"], entry["sha256"]):
            raise _bad(f"{relative} does not match its checksum in {MANIFEST} (damaged)")
    return manifest


@contextlib.contextmanager
def _opened(archive: Path) -> Iterator[Path]:
    """The archive as a directory (a tar is unpacked into a temporary one)."""
    if archive.is_dir():
        yield archive
        return
    if not archive.is_file():
        raise BackupError(f"{archive}: no such backup")
    with tempfile.TemporaryDirectory(prefix="gonghui-restore-") as tmp:
        try:
            with tarfile.open(archive, "r") as tar:
                _extract(tar, Path(tmp))
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _bad(f"{archive} is not a readable tar ({exc})") from exc
        yield Path(tmp)


def _extract(tar: tarfile.TarFile, into: Path) -> None:
    """Only plain files and directories, only below ``into`` (a crafted tar must not write
    elsewhere)."""
    members = tar.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in parts:
            raise _bad(f"unexpected entry {member.name!r} in the tar")
    if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
        tar.extractall(into, members=members, filter="data")
    else:
        tar.extractall(into, members=members)


def verify(archive: Path, *, say: Say = _quiet) -> dict[str, Any]:
    """The archive's manifest, once it and every checksum are found good."""
    with _opened(archive) as root:
        return _verify_tree(root, say)


def restore(
    archive: Path,
    *,
    force: bool = False,
    settings: Settings | None = None,
    store: BlobStore | None = None,
    say: Say = _quiet,
) -> RestoreResult:
    """Restore the archive into the configured database and store. Nothing is changed
    unless the whole archive checks out and (without ``force``) the target is empty; with
    ``force`` the target's database and files are replaced."""
    settings = settings or get_settings()
    store = store or get_store()
    with _opened(archive) as root:
        manifest = _verify_tree(root, say)
        database = manifest["database"]
        kind = _db_kind(settings)
        if database["kind"] != kind:
            raise BackupError(
                f"this backup is of a {database['kind']} database; the configured one is {kind}"
            )
        if kind == "sqlite":
            occupied = _sqlite_has_tables(_sqlite_path(settings))
        else:
            occupied = _pg_has_tables(settings.resolved_database_url)
        existing = set(store.keys())
        if (occupied or existing) and not force:
            what = " and ".join(
                w for w, x in (("the database", occupied), ("the file store", existing)) if x
            )
            raise BackupError(f"{what} already hold data: restore into empty ones, or --force")

        say(f"database ({kind})...")
        if kind == "sqlite":
            _restore_sqlite(settings, root / SQLITE_FILE, database["size"], database["sha256"])
        else:
            _restore_pg(settings, root / PG_FILE, database["size"], database["sha256"], force)

        say(f"{manifest['file_count']} files...")
        wanted = set()
        for entry in manifest["files"]:
            key = entry["key"]
            wanted.add(key)
            path = root / "files" / key
            store.put(key, _checked(path, entry["size"], entry["sha256"], f"files/{key}"))
        stale = existing - wanted
        for key in stale:
            store.delete(key)

    keys = existing_keys()
    expected = manifest.get("keys_fingerprint")
    if keys is None:
        keys_state = "missing"
    elif expected is None:
        keys_state = "unknown"
    elif hmac.compare_digest(keys_fingerprint(keys), expected):
        keys_state = "match"
    else:
        keys_state = "differ"
    return RestoreResult(
        db_kind=kind,
        alembic_revision=database.get("alembic_revision"),
        file_count=manifest["file_count"],
        file_bytes=manifest["file_bytes"],
        removed=len(stale),
        keys=keys_state,
    )

"""``gonghui backup`` and ``gonghui restore`` through the real command: a round trip into a
fresh database and file store compares every row of every table and every file byte for
byte (SQLite, or PostgreSQL when the tests run on it; files on disk and in a bucket), and
a damaged archive is refused before anything is restored."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from gonghui import tasks
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from gonghui.storage import BlobStore, LocalStore, S3Store
from tests import s3server
from tests.baas.conftest import AppHandle, make_table
from tests.fixtures import PhoneUserFactory, StaffFactory, Tree, proof_png, request_review
from tests.members.conftest import csv_bytes, id_number
from tests.members.helpers import broken_rows

_GONGHUI = Path(sys.executable).parent / "gonghui"
FILES = "/api/v1/baas/files"


def gonghui(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_GONGHUI), *args],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@dataclass
class Site:
    """Where a deployment keeps its data: what the command reads from the environment."""

    data_dir: Path
    database_url: str
    store: BlobStore
    s3_endpoint: str = ""
    s3_bucket: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = {
            "GONGHUI_DATA_DIR": str(self.data_dir),
            "GONGHUI_DATABASE_URL": self.database_url,
            "GONGHUI_STORAGE_BACKEND": "s3" if self.s3_bucket else "local",
        }
        if self.s3_bucket:
            env.update(
                GONGHUI_S3_ENDPOINT_URL=self.s3_endpoint,
                GONGHUI_S3_BUCKET=self.s3_bucket,
                GONGHUI_S3_REGION=s3server.REGION,
                GONGHUI_S3_ACCESS_KEY_ID=s3server.ACCESS_KEY,
                GONGHUI_S3_SECRET_ACCESS_KEY=s3server.SECRET_KEY,
            )
        return env

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'gonghui.db'}"


def s3_store(endpoint: str, bucket: str) -> S3Store:
    return S3Store(
        endpoint_url=endpoint,
        bucket=bucket,
        region=s3server.REGION,
        access_key=s3server.ACCESS_KEY,
        secret_key=s3server.SECRET_KEY,
    )


def this_site(store: BlobStore) -> Site:
    settings = get_settings()
    return Site(
        settings.data_dir,
        settings.database_url,
        store,
        settings.s3_endpoint_url if settings.storage_backend == "s3" else "",
        settings.s3_bucket if settings.storage_backend == "s3" else "",
    )


@pytest.fixture
def fresh_site(tmp_path: Path) -> Iterator[Site]:
    """An empty data directory, an empty database (a new one on the PostgreSQL server when
    the tests run on PostgreSQL) and an empty file store of the same kind as this one's."""
    settings = get_settings()
    data_dir = tmp_path / "restored"
    data_dir.mkdir()
    database_url = ""
    name = f"gh_restore_{secrets.token_hex(4)}"
    admin = None
    if not settings.is_sqlite:
        admin = create_engine(settings.database_url, poolclass=NullPool)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        database_url = make_url(settings.database_url).set(database=name).render_as_string(False)
    site = Site(data_dir, database_url, LocalStore(data_dir / "files"))
    endpoint = ""
    if settings.storage_backend == "s3":
        endpoint = settings.s3_endpoint_url
        site.s3_endpoint = endpoint
        site.s3_bucket = s3server.new_bucket(endpoint)
        site.store = s3_store(endpoint, site.s3_bucket)
    yield site
    if site.s3_bucket:
        s3server.drop_bucket(site.s3_endpoint, site.s3_bucket)
    if admin is not None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(api: httpx.Client, tree: Tree, make_staff: StaffFactory, make_phone_user: Any) -> None:
    """Rows in most tables that matter, and files of each kind: a roster import's error
    report, a member's sealed proof image, an app's files and thumbnail, an app table."""
    operator = make_staff(tree.city_a, Role.OPERATOR)
    resp = api.post(
        f"/api/v1/orgs/{tree.city_a}/roster/imports",
        files={"file": ("roster.csv", csv_bytes(broken_rows()), "text/csv")},
        headers=operator.headers,
    )
    assert resp.status_code == 202, resp.text
    tasks.run_due()
    member = make_phone_user()
    proof = request_review(
        api, member.headers, tree.grassroots_a1x, "林一", id_number("44010619900307123")
    )
    assert proof.status_code in (200, 201), proof.text
    dev = make_staff(tree.district_a1, Role.DEVELOPER)
    made = api.post(
        "/api/v1/baas/apps", json={"org_id": tree.district_a1, "name": "福利"}, headers=dev.headers
    ).json()
    app = AppHandle(made["id"], made["org_id"], made["client_key"], made["server_key"], dev)
    make_table(api, app, "notes", [{"name": "body", "type": "string"}])
    for body in ("一", "二"):
        rec = api.post("/api/v1/baas/data/notes/records", json={"body": body}, headers=app.server)
        assert rec.status_code == 201, rec.text
    for name, data, kind in [
        ("名单.txt", "工会 welfare\n".encode(), "text/plain"),
        ("photo.png", proof_png(), "image/png"),
        ("big.txt", b"x" * (3 << 20), "text/plain"),
    ]:
        up = api.post(FILES, files={"file": (name, data, kind)}, headers=app.server)
        assert up.status_code == 201, up.text


def tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            return {
                name: sorted(
                    (tuple(row) for row in conn.execute(text(f'SELECT * FROM "{name}"'))),
                    key=repr,
                )
                for name in names
            }
    finally:
        engine.dispose()


def files(store: BlobStore) -> dict[str, bytes]:
    return {key: b"".join(store.iter_bytes(key)) for key in store.keys()}


def copy_keys(source: Path, target: Path) -> None:
    (target / "secrets").mkdir(mode=0o700)
    shutil.copy2(source / "secrets" / "keys.json", target / "secrets" / "keys.json")


@pytest.mark.parametrize("archive", ["backup", "backup.tar"])
@pytest.mark.parametrize("files_in", ["configured store", "bucket"])
def test_backup_and_restore_reproduce_every_row_and_file(
    request: pytest.FixtureRequest,
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_phone_user: PhoneUserFactory,
    fresh_site: Site,
    tmp_path: Path,
    files_in: str,
    archive: str,
) -> None:
    if files_in == "bucket" and get_settings().storage_backend != "s3":
        store: BlobStore = request.getfixturevalue("s3_backend")
        fresh_site.s3_endpoint = request.getfixturevalue("s3_endpoint")
        fresh_site.s3_bucket = s3server.new_bucket(fresh_site.s3_endpoint)
        fresh_site.store = s3_store(fresh_site.s3_endpoint, fresh_site.s3_bucket)
    else:
        from gonghui.storage import get_store

        store = get_store()
    seed(api, tree, make_staff, make_phone_user)
    source = this_site(store)
    before_tables, before_files = tables(source.url), files(store)
    assert len(before_files) >= 6  # report, proof, three app files, a thumbnail
    assert all(
        before_tables[t]
        for t in (
            "members_roster_entry",
            "members_verification_request",
            "baas_file",
            "audit_entry",
        )
    )
    assert any(t.startswith("baas_t_") for t in before_tables)

    out = tmp_path / archive
    made = gonghui("backup", str(out), env=source.env)
    assert made.returncode == 0, made.stderr
    assert f"{len(before_files)} files" in made.stdout
    assert "REMINDER: The keys are NOT in this backup" in made.stdout
    assert (out.is_dir() and (out / "manifest.json").is_file()) or out.is_file()

    copy_keys(source.data_dir, fresh_site.data_dir)
    restored = gonghui("restore", str(out), env=fresh_site.env)
    assert restored.returncode == 0, restored.stderr
    assert "keys: the keys here are the ones the backup was taken with" in restored.stdout
    assert "A restore without the same keys cannot read personal data" in restored.stdout
    assert tables(fresh_site.url) == before_tables
    assert files(fresh_site.store) == before_files

    # Again into the same place: refused, unless forced.
    again = gonghui("restore", str(out), env=fresh_site.env)
    assert again.returncode == 1
    assert "already hold data: restore into empty ones, or --force" in again.stderr
    fresh_site.store.put("baas/999/stray", [b"not in the backup"])
    forced = gonghui("restore", "--force", str(out), env=fresh_site.env)
    assert forced.returncode == 0, forced.stderr
    assert "removed 1 files not in the backup" in forced.stdout
    assert tables(fresh_site.url) == before_tables
    assert files(fresh_site.store) == before_files


def test_a_damaged_archive_is_refused_before_anything_is_restored(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    make_phone_user: PhoneUserFactory,
    fresh_site: Site,
    tmp_path: Path,
) -> None:
    from gonghui.storage import get_store

    seed(api, tree, make_staff, make_phone_user)
    source = this_site(get_store())
    out = tmp_path / "backup"
    assert gonghui("backup", str(out), env=source.env).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    key = manifest["files"][0]["key"]

    def refused(why: str) -> None:
        done = gonghui("restore", str(out), env=fresh_site.env)
        assert done.returncode == 1
        assert f"restore refused: not a usable gonghui backup: {why}" in done.stderr
        assert not (fresh_site.data_dir / "gonghui.db").exists()
        assert list(fresh_site.store.keys()) == []
        if fresh_site.database_url:
            assert tables(fresh_site.url) == {}

    blob = out / "files" / key
    original = blob.read_bytes()
    blob.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    refused(f"files/{key} does not match its checksum in manifest.json (damaged)")
    blob.write_bytes(original)

    database = out / manifest["database"]["file"]
    with database.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    refused(f"{manifest['database']['file']} does not match its checksum")
    with database.open("r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(last)

    blob.unlink()
    refused(f"files/{key} is missing")
    blob.write_bytes(original)

    text_ = (out / "manifest.json").read_text()
    (out / "manifest.json").write_text(text_[: len(text_) // 2])
    refused("manifest.json is damaged")
    (out / "manifest.json").write_text(text_)

    tar = tmp_path / "backup.tar"
    assert gonghui("backup", str(tar), env=source.env).returncode == 0
    tar.write_bytes(tar.read_bytes()[:1000])
    done = gonghui("restore", str(tar), env=fresh_site.env)
    assert done.returncode == 1
    assert "restore refused: not a usable gonghui backup" in done.stderr

    # The intact archive restores; without the keys it says so plainly.
    done = gonghui("restore", str(out), env=fresh_site.env)
    assert done.returncode == 0, done.stderr
    assert "WARNING: no keys here" in done.stdout


def test_backup_will_not_overwrite_an_archive(tmp_path: Path) -> None:
    out = tmp_path / "backup"
    out.mkdir()
    done = gonghui("backup", str(out), env={})
    assert done.returncode == 1
    assert f"backup failed: {out} already exists: give a new name" in done.stderr


def test_a_tar_that_would_write_outside_its_directory_is_refused(
    tmp_path: Path, fresh_site: Site
) -> None:
    import io
    import tarfile
    import tempfile

    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        payload = b"owned"
        entry = tarfile.TarInfo("../escaped")
        entry.size = len(payload)
        tar.addfile(entry, io.BytesIO(payload))
        link = tarfile.TarInfo("manifest.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    done = gonghui("restore", str(archive), env=fresh_site.env)
    assert done.returncode == 1
    assert "restore refused: not a usable gonghui backup: unexpected entry '../escaped'" in (
        done.stderr
    )
    assert not (Path(tempfile.gettempdir()) / "escaped").exists()

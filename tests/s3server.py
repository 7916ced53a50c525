"""An S3 protocol server for tests: moto's standalone server (``moto_server``) as a child
process on a free loopback port, or the one ``GONGHUI_TEST_S3_ENDPOINT`` names (started
by scripts/s3-throwaway.sh). Every user gets a bucket of its own."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from gonghui.settings import get_settings
from gonghui.storage import S3Store, get_store

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"
READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    """A moto server of its own for the duration; yields its endpoint URL."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {log_path.read_text()[-2000:]}")
            try:
                httpx.get(f"{url}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def external_endpoint() -> str:
    return os.environ.get("GONGHUI_TEST_S3_ENDPOINT", "")


def client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def new_bucket(endpoint: str) -> str:
    name = f"gonghui-test-{secrets.token_hex(6)}"
    client(endpoint).create_bucket(Bucket=name)
    return name


def empty_bucket(endpoint: str, bucket: str) -> None:
    s3 = client(endpoint)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in uploads:
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def drop_bucket(endpoint: str, bucket: str) -> None:
    empty_bucket(endpoint, bucket)
    client(endpoint).delete_bucket(Bucket=bucket)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The S3 server of this test session: GONGHUI_TEST_S3_ENDPOINT, else one started here."""
    if external_endpoint():
        yield external_endpoint()
        return
    with moto_server(tmp_path_factory.mktemp("moto") / "server.log") as url:
        yield url


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    name = new_bucket(s3_endpoint)
    yield name
    drop_bucket(s3_endpoint, name)


@pytest.fixture
def s3_backend(s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """The app stores its files in a fresh bucket for this test; the store it uses."""
    settings = get_settings()
    for name, value in {
        "storage_backend": "s3",
        "s3_endpoint_url": s3_endpoint,
        "s3_bucket": s3_bucket,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        "s3_public_endpoint_url": "",
    }.items():
        monkeypatch.setattr(settings, name, value)
    store = get_store()
    assert isinstance(store, S3Store)
    return store

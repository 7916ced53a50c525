"""Each SDK's 'hello union' example app, run as its users run it, against the real server:
a member opens it, is sent to sign in with their union account, consents on the H5, comes
back signed in and sees their union's activities (and not those of a union below theirs or
of another city)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures import Staff, Tree
from tests.openplatform.conftest import Browser, BrowserFactory
from tests.sdk.conftest import UnionActivities, register_app

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """The example app started with ``command``, once it accepts connections."""
    app = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if app.poll() is not None:
                output = app.stdout.read().decode() if app.stdout else ""
                pytest.fail(f"{command} exited with {app.returncode}: {output}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{command} did not listen on {port}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        app.terminate()
        app.wait(timeout=10)
        if app.stdout:
            app.stdout.close()


def signed_in_listing(app: str, member: Browser) -> httpx.Response:
    start = member.http.get(f"{app}/")
    assert start.status_code == 302, start.text
    back = member.authorize(start.headers["location"])
    assert back.status_code in (302, 303), back.text
    callback = back.headers["location"]
    assert callback.startswith(f"{app}/callback?code="), callback
    return member.http.get(callback)


@pytest.fixture
def district_member(tree: Tree, member_browser: BrowserFactory) -> Browser:
    """A member of 天河区总工会 (in 广州, with 天河软件园工会 below it)."""
    return member_browser(tree.district_a1, name="李雷")


@pytest.fixture(params=["python", "typescript"])
def example_app(
    request: pytest.FixtureRequest, server: str, api: httpx.Client, city_developer: Staff,
    tree: Tree,
) -> Iterator[str]:  # fmt: skip
    port = free_port()
    client = register_app(
        api, city_developer, tree.city_a, redirect_uri=f"http://127.0.0.1:{port}/callback"
    )
    env = {
        "GONGHUI_ISSUER": server,
        "GONGHUI_CLIENT_ID": client["client_id"],
        "GONGHUI_CLIENT_SECRET": client["client_secret"],
        "HELLO_PORT": str(port),
    }
    if request.param == "python":
        example = ROOT / "sdk" / "python" / "examples" / "hello_union.py"
        env["PYTHONPATH"] = str(ROOT / "sdk" / "python")
        yield from running([sys.executable, str(example)], env, port)
    else:
        dist: Path = request.getfixturevalue("typescript_build")
        yield from running(["node", str(dist / "examples" / "hello-union.js")], env, port)


def test_a_member_signs_in_to_hello_union_and_sees_their_unions_activities(
    example_app: str, district_member: Browser, union_activities: UnionActivities
) -> None:
    listing = signed_in_listing(example_app, district_member)
    assert listing.status_code == 200, listing.text
    assert "你好，天河区总工会的会员" in listing.text
    assert (
        "<li>广州投票（广州市总工会，live）</li><li>广州答题（广州市总工会，scheduled）</li>"
        in (listing.text)
    )
    assert "天河抽奖" not in listing.text  # a union below the member's
    assert "深圳抽奖" not in listing.text

    # The callback, replayed, finds no sign-in under way for this browser.
    again = district_member.http.get(f"{example_app}/callback?code=x&state=y")
    assert again.status_code == 400

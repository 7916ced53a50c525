"""The README's first command, as a newcomer runs it: ``make run`` on an empty data
directory, with the embedded defaults (SQLite, local files), serves a demo member who
signs in by SMS code and draws in the live lottery."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from gonghui import demo
from tests.accounts.helpers import bearer, last_dev_code, send_code, sms_login
from tests.serverproc import free_port

ROOT = Path(__file__).resolve().parents[1]
UP_TIMEOUT_S = 180.0


def _wait_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(f"{base}/api/v1/ping", timeout=2).status_code in (200, 401):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("make run did not serve in time:\n" + log.read_text()[-3000:])


def test_make_run_on_an_empty_data_directory_serves_a_member_who_draws(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Only what a newcomer's shell has: none of the test run's database, Redis or bucket.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGHUI_")}
    env.update({"GONGHUI_DATA_DIR": str(tmp_path / "data"), "GONGHUI_PORT": str(port)})
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "-s", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_up(base, process, log)
        printed = log.read_text()
        assert f"demo member: {demo.DEMO_MEMBER_NAME}, phone {demo.DEMO_MEMBER_PHONE}" in printed
        with httpx.Client(base_url=base, timeout=30) as api:
            assert send_code(api, demo.DEMO_MEMBER_PHONE).status_code == 200
            code = last_dev_code(api, demo.DEMO_MEMBER_PHONE)
            signed_in = sms_login(api, demo.DEMO_MEMBER_PHONE, code)
            assert signed_in.status_code == 200, signed_in.text
            member = bearer(signed_in.json())
            hub = api.get("/api/v1/hub", headers=member).json()["items"]
            lottery = next(i for i in hub if i["title"] == "工会暖心抽奖")
            drawn = api.post(
                f"/api/v1/activities/{lottery['id']}/draws",
                json={"entropy": "newcomer"},
                headers={**member, "X-Device-Id": "newcomer-phone"},
            )
            assert drawn.status_code == 200, drawn.text
            assert drawn.json()["chances_left"] == 2
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert (tmp_path / "data" / "demo-accounts.txt").stat().st_mode & 0o077 == 0

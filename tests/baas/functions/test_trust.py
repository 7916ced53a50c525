"""Functions run only inside bubblewrap: without it they are refused with a clear message,
no setting lets any org's code run outside it, and a failed probe is retried."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from gonghui import clock
from gonghui.baas.functions import sandbox
from gonghui.baas.functions.invoke import close_pool
from gonghui.keys import get_keys
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.baas.devapp import deploy, invoke, make_app
from tests.fixtures import StaffFactory, Tree

HELLO = "def handler(event, context):\n    return 'ran'\n"


class BrokenBubblewrap:
    """A ``bwrap`` that cannot create namespaces (as on a kernel that forbids unprivileged
    user namespaces), first on the PATH until :meth:`repair`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self._monkeypatch = monkeypatch
        self._path = os.environ["PATH"]
        fake = folder / "bwrap"
        fake.write_text(
            "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
        )
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", str(folder))

    def repair(self) -> None:
        self._monkeypatch.setenv("PATH", self._path)


@pytest.fixture
def broken_bubblewrap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[BrokenBubblewrap]:
    # A fresh pool and probe: no sandboxed spare made earlier may serve these calls.
    close_pool()
    sandbox.forget_probe()
    broken = BrokenBubblewrap(monkeypatch, tmp_path)
    yield broken
    broken.repair()
    sandbox.forget_probe()
    close_pool()


@pytest.fixture
def deployment_trusting_city_a(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment of a deployment that trusted city A's code (and then every org's)
    to run without the sandbox, as earlier releases allowed."""
    monkeypatch.setenv("GONGHUI_FUNCTIONS_TRUSTED_ORGS", json.dumps(["GZ"]))
    monkeypatch.setenv("GONGHUI_FUNCTIONS_TRUST_UNSANDBOXED", "true")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_functions_refused_while_bubblewrap_is_broken_run_once_it_works_without_a_restart(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, broken_bubblewrap: BrokenBubblewrap
) -> None:
    app = make_app(api, make_staff(tree.city_b, Role.DEVELOPER), tree.city_b, "B")
    deploy(api, app, "hello", HELLO)
    refused = invoke(api, app, "hello", None)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "functions.sandbox_unavailable"
    assert "bubblewrap" in refused.json()["error"]["message"]
    broken_bubblewrap.repair()  # the operator installs or fixes bubblewrap
    clock.advance(sandbox.PROBE_RETRY + timedelta(seconds=1))
    ran = invoke(api, app, "hello", None)
    assert ran.status_code == 200, ran.text
    assert ran.json()["result"] == "ran"


def test_an_org_once_named_trusted_gets_no_run_outside_the_sandbox(
    api: httpx.Client,
    tree: Tree,
    make_staff: StaffFactory,
    deployment_trusting_city_a: None,
    broken_bubblewrap: BrokenBubblewrap,
) -> None:
    keys_file = get_settings().data_dir.resolve() / "secrets" / "keys.json"
    get_keys()
    assert keys_file.exists()
    steal = (
        "import os\n"
        "def handler(event, context):\n"
        f"    return {{'keys': open({str(keys_file)!r}).read(), 'env': dict(os.environ)}}\n"
    )
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.grassroots_a1x, "A")
    deploy(api, app, "steal", steal)
    refused = invoke(api, app, "steal", None)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "functions.sandbox_unavailable"
    assert keys_file.read_text() not in refused.text
    assert "GONGHUI" not in refused.text

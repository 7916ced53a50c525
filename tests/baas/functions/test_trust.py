"""Without bubblewrap, functions refuse to run with a clear message, unless the deployment
trusts the app's org (or one above it)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gonghui.baas.functions import sandbox
from gonghui.baas.functions.invoke import close_pool
from gonghui.orgs.models import Role
from gonghui.settings import get_settings
from tests.baas.devapp import deploy, invoke, make_app
from tests.fixtures import StaffFactory, Tree

HELLO = "def handler(event, context):\n    return 'ran'\n"


@pytest.fixture
def no_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A fresh pool: no sandboxed spare made earlier may serve these calls.
    close_pool()
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    settings = get_settings()
    yield
    settings.functions_trusted_orgs = []
    close_pool()


def test_without_bubblewrap_only_trusted_orgs_run_functions(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory, no_bubblewrap: None
) -> None:
    get_settings().functions_trusted_orgs = ["GZ"]  # city A and its subtree
    app_a = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.grassroots_a1x, "A")
    app_b = make_app(api, make_staff(tree.city_b, Role.DEVELOPER), tree.city_b, "B")
    deploy(api, app_a, "hello", HELLO)
    deploy(api, app_b, "hello", HELLO)
    refused = invoke(api, app_b, "hello", None)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "functions.sandbox_unavailable"
    assert "bubblewrap" in refused.json()["error"]["message"]
    assert invoke(api, app_a, "hello", None).json()["result"] == "ran"

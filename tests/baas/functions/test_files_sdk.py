"""A function works with its own app's files through the SDK, under the same rules as the
files API; another app's files stay out of reach."""

from __future__ import annotations

import httpx

from gonghui.orgs.models import Role
from tests.baas.devapp import deploy, invoke, make_app
from tests.fixtures import StaffFactory, Tree

REPORT = """
def handler(event, context):
    saved = context.files.write("report.txt", "参与人数: " + str(event), folder="reports")
    listed = [f["name"] for f in context.files.list("reports")]
    text = context.files.read(saved["id"]).decode()
    link = context.files.url(saved["id"])["url"]
    return {"type": saved["content_type"], "listed": listed, "text": text, "link": link}
"""


def test_a_function_writes_lists_reads_and_links_its_apps_files(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "报表")
    deploy(api, app, "report", REPORT, runs_as="server")
    result = invoke(api, app, "report", 42).json()["result"]
    assert result["type"].startswith("text/plain")
    assert result["listed"] == ["report.txt"]
    assert result["text"] == "参与人数: 42"
    download = api.get(
        result["link"].removeprefix(str(api.base_url).rstrip("/")), follow_redirects=True
    )
    assert download.status_code == 200
    assert download.content.decode() == "参与人数: 42"


def test_another_apps_files_are_not_found(
    api: httpx.Client, tree: Tree, make_staff: StaffFactory
) -> None:
    owner = make_app(api, make_staff(tree.city_b, Role.DEVELOPER), tree.city_b, "B")
    stored = api.post(
        "/api/v1/baas/files",
        files={"file": ("secret.txt", b"b's data", "text/plain")},
        headers=owner.server,
    )
    assert stored.status_code == 201, stored.text
    app = make_app(api, make_staff(tree.city_a, Role.DEVELOPER), tree.city_a, "A")
    snoop = (
        "def handler(event, context):\n"
        "    try:\n"
        "        return context.files.read(event).decode()\n"
        "    except Exception as exc:\n"
        "        return str(exc)\n"
    )
    deploy(api, app, "snoop", snoop, runs_as="server")
    result = invoke(api, app, "snoop", stored.json()["id"]).json()["result"]
    assert result.startswith("baas.file_not_found")

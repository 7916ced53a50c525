"""Browser tests: Playwright driving Debian's Chromium against the real test server.

Every page a test opens is watched: a console error, an uncaught exception or a failed
request fails the test. ``shot(page, name)`` saves a screenshot under ``artifacts/`` and
``axe(page)`` runs axe-core and returns the serious and critical findings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Request, sync_playwright

from gonghui import tasks

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(autouse=True)
def worker() -> Iterator[None]:
    """Background work (roster imports the pages watch) runs as in a served process: on a
    worker in this process."""
    tasks.runtime.start(threads=2)
    yield
    tasks.runtime.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/browser-deps.sh (make test does)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


class PageProblems:
    def __init__(self, expected: tuple[str, ...] = ()) -> None:
        self.items: list[str] = []
        self.expected = expected
        # Main-frame navigations started so far, and the count each request began under:
        # a page's own loads cancelled because the test moved on to the next page (a click
        # that submits a form while a deferred script still loads) are not failures.
        self.navigations = 0
        self.started_under: dict[Request, int] = {}
        # Set when the test is over: closing the page cancels what it still loads (an HTMX
        # request fired on load, such as the H5 hub's inbox badge), which is no failure.
        self.closing = False

    def request(self, request: Request) -> None:
        if request.is_navigation_request() and request.frame.parent_frame is None:
            self.navigations += 1
        self.started_under[request] = self.navigations

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(e in message.text for e in self.expected):
            self.items.append(f"console error: {message.text}")

    def page_error(self, error: Any) -> None:
        self.items.append(f"page error: {error}")

    def request_failed(self, request: Request) -> None:
        if self.closing:
            return
        if request.failure == "net::ERR_ABORTED" and "X-Amz-Signature=" in request.url:
            # A redirect to a presigned bucket URL served as an attachment: Chromium turns
            # it into a download and reports the navigation as aborted.
            return
        if request.failure == "net::ERR_ABORTED" and request.resource_type in ("xhr", "fetch"):
            # A page's own HTMX request the browser cancelled (the page moved on or was
            # closed while the H5 hub's inbox badge still loaded): the client's doing, never
            # a failed answer, which shows as a status or another network error.
            return
        left_behind = self.started_under.get(request, self.navigations) < self.navigations
        if request.failure == "net::ERR_ABORTED" and left_behind:
            return
        self.items.append(f"request failed: {request.method} {request.url} {request.failure}")

    def response(self, response: Any) -> None:
        # Expected refusals (a wrong password answers 401) are asserted by the tests;
        # server errors never are.
        if response.status >= 500:
            self.items.append(f"server error: {response.status} {response.url}")


def _expected(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """``@pytest.mark.expected_console_errors("status of 403")`` for a page meant to refuse."""
    marker = request.node.get_closest_marker("expected_console_errors")
    return tuple(marker.args) if marker else ()


def _open(
    browser: Browser, server: str, expected: tuple[str, ...], **options: Any
) -> tuple[Any, Page, PageProblems]:
    context = browser.new_context(base_url=server, locale="zh-CN", **options)
    page = context.new_page()
    problems = PageProblems(expected)
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    page.on("request", problems.request)
    page.on("requestfailed", problems.request_failed)
    page.on("response", problems.response)
    return context, page, problems


@pytest.fixture
def desktop(browser: Browser, server: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    context, page, problems = _open(
        browser, server, _expected(request), viewport={"width": 1280, "height": 800}
    )
    yield page
    problems.closing = True
    context.close()
    assert problems.items == []


@pytest.fixture
def phone(browser: Browser, server: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    context, page, problems = _open(
        browser,
        server,
        _expected(request),
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
    )
    yield page
    problems.closing = True
    context.close()
    assert problems.items == []


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def loaded_width(image: Locator) -> int:
    """An <img>'s natural width once its picture has loaded and decoded: a visible image
    may still be loading (0), and a broken one fails here."""
    return int(image.evaluate("img => img.decode().then(() => img.naturalWidth)"))


def axe(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core findings on the current page."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]

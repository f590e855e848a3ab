"""Browser tests: Debian's headless Chromium, driven by Playwright's Python package, against a
real Daphne server and a real rq worker on the test database (production settings: DEBUG off,
collected static files).

- ``site_server``: the web server and one worker for every queue, started once for this
  package and stopped when it is done (so later tests' in-process workers have the queues
  to themselves).
- ``page``: a fresh browser context per test (no cookies shared between tests). Every
  response of ours that fails and every console error or uncaught exception fails the test
  (``allow_failed_responses`` lets a test that visits a missing page through), and a failing
  test leaves a screenshot under ``<test data dir>/screenshots/``.

Chromium is found at ``SIGHTLINE_CHROMIUM`` or ``/usr/bin/chromium``; `playwright install`
downloads browsers and cannot work here. Without it these tests skip, saying how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.servers import (
    collect_static,
    free_port,
    log_tail,
    start_web_server,
    start_worker_process,
    stop_process,
    wait_until_serving,
)

CHROMIUM = os.environ.get("SIGHTLINE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As root (CI, containers) Chromium needs --no-sandbox; the rest keeps it off this closed
# network (its background services would each try to reach Google, and fail, at every start).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
PASSWORD = "a long test passphrase"
EXPECT_TIMEOUT_MS = 20_000
# Photos go through a worker on two shared cores: completion takes seconds, not milliseconds.
JOB_TIMEOUT_MS = 120_000


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.fspath)).parents]
    # Last, and together: this package's worker takes jobs from every queue while it runs, so
    # no other test may be running its own in-process worker meanwhile.
    items[:] = [item for item in items if item not in ours] + ours
    if not Path(CHROMIUM).is_file():
        reason = (f"Chromium not found at {CHROMIUM}: install Debian's package (`apt-get install chromium`) or set "
                  "SIGHTLINE_CHROMIUM to a Chromium binary (`playwright install` cannot download browsers here)")
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=reason))
    for item in ours:
        # Each test's rows must be visible to the server processes, and go away after it.
        item.add_marker(pytest.mark.django_db(transaction=True))
        item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class SiteServer:
    url: str
    web: object
    worker: object

    def logs(self) -> str:
        return (f"--- web server log ---\n{log_tail(self.web)}\n"
                f"--- worker log ---\n{log_tail(self.worker)}")


@pytest.fixture(scope="package")
def site_server(django_db_setup, django_db_blocker) -> SiteServer:
    with django_db_blocker.unblock():
        collect_static()
        worker = start_worker_process("realtime", "inference", "default")
        try:
            # Asked on `inference`: other tests' realtime worker may still serve `realtime`.
            wait_until_serving(worker, "inference")
            port = free_port()
            web = start_web_server(port)
        except BaseException:
            stop_process(worker)
            raise
    server = SiteServer(f"http://127.0.0.1:{port}", web, worker)
    yield server
    stop_process(web)
    stop_process(worker)


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running on this thread, which Django's ORM
    # takes for async code; the tests' own ORM calls are plain synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class PageProblems:
    """What went wrong in the page that the test did not ask for."""

    live_url: str
    failed_responses: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def on_response(self, response):
        if response.url.startswith(self.live_url) and response.status >= 400:
            path = response.url[len(self.live_url):]
            if not any(pattern.search(path) for pattern in self.allowed):
                self.failed_responses.append(f"{response.status} {response.request.method} {path}")

    def on_console(self, message):
        # A failed response also logs a console error; the response list says it better.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.console_errors.append(message.text)


def _allowed_failures(node) -> list[re.Pattern]:
    if not hasattr(node, "allowed_failures"):
        node.allowed_failures = []
    return node.allowed_failures


@pytest.fixture
def allow_failed_responses(request):
    """``allow_failed_responses(r"^/no-such-page/")``: responses of these paths may fail."""
    patterns = _allowed_failures(request.node)
    return lambda *regexes: patterns.extend(re.compile(r) for r in regexes)


@pytest.fixture
def new_page(browser, site_server, request):
    """``new_page()``: a page in a context of its own (a second user in the same test, say)."""
    contexts = []
    problems = PageProblems(site_server.url, allowed=_allowed_failures(request.node))

    def make(viewport=None):
        context = browser.new_context(base_url=site_server.url, viewport=viewport or {"width": 1280, "height": 900})
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        page = context.new_page()
        page.on("response", problems.on_response)
        page.on("console", problems.on_console)
        page.on("pageerror", lambda error: problems.console_errors.append(f"uncaught: {error}"))
        contexts.append((context, page))
        return page

    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    yield make
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        shots = Path(settings.DATA_DIR) / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        for number, (_, page) in enumerate(contexts):
            path = shots / f"{request.node.name}-{number}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot: {path}")
            except Exception as exc:  # noqa: BLE001 - a closed page must not hide the real failure
                print(f"no screenshot of page {number}: {exc}")
        print(site_server.logs())
    for context, _ in contexts:
        context.close()
    if failed is not None and not failed.failed:
        assert not problems.failed_responses, f"responses that failed: {problems.failed_responses}"
        assert not problems.console_errors, f"console errors: {problems.console_errors}"


@pytest.fixture
def page(new_page):
    return new_page()

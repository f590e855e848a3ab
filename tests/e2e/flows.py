"""What a user does in the browser, in a few steps each; and the accessibility check."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from django.conf import settings
from playwright.sync_api import Page, expect

from tests.e2e.conftest import JOB_TIMEOUT_MS, PASSWORD

# Every page must pass axe-core with no violation of these impacts.
BLOCKING_IMPACTS = {"serious", "critical"}
AXE_REPORT = "axe-report.json"


def register(page: Page, email: str, name: str = "") -> None:
    page.goto("/register/")
    page.get_by_label("Email").fill(email)
    if name:
        page.get_by_label("Display name (optional)").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url("/")


def forget_the_session(page: Page) -> None:
    """Signed out by losing the cookie, as when a session ends. The page is left first: a
    dashboard's WebSocket handshake that met the cleared cookies would be refused (403)."""
    page.goto("about:blank")
    page.context.clear_cookies()


def log_in(page: Page, email: str) -> None:
    page.goto("/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/")


def upload(page: Page, *paths: Path, names: list[str] | None = None) -> None:
    """Upload from the dashboard (as ``names``, if given) and wait until every file's row
    reached ``completed``."""
    page.goto("/")
    files = [{"name": name, "mimeType": "application/octet-stream", "buffer": path.read_bytes()}
             for path, name in zip(paths, names)] if names else [str(p) for p in paths]
    page.get_by_label("Photos and videos").set_input_files(files)
    page.get_by_role("button", name="Upload").click()
    for name in names or [path.name for path in paths]:
        row = page.locator("tr.asset-row").filter(has=page.get_by_role("link", name=name, exact=True))
        expect(row.locator('[data-role="stage"]')).to_have_text("completed", timeout=JOB_TIMEOUT_MS)


def check_accessibility(page: Page, name: str) -> dict:
    """Run axe-core on the page as it is now; fail on serious or critical violations.

    Every result is also recorded (by page name) in ``<test data dir>/axe-report.json``, and with
    ``SIGHTLINE_E2E_SCREENSHOTS=1`` the page is saved as ``screenshots/<name>.png`` to look at."""
    from axe_playwright_python.sync_playwright import Axe

    if os.environ.get("SIGHTLINE_E2E_SCREENSHOTS"):
        # For looking at the pages: every checked page, as the check saw it.
        shots = Path(settings.DATA_DIR) / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"), full_page=True)
    results = Axe().run(page)
    violations = results.response["violations"]
    by_impact: dict[str, int] = {}
    for violation in violations:
        by_impact[violation["impact"]] = by_impact.get(violation["impact"], 0) + len(violation["nodes"])
    _record(name, {"url": page.url, "violations": by_impact,
                   "rules": sorted({f"{v['id']} ({v['impact']})" for v in violations})})
    blocking = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in violations if v["impact"] in BLOCKING_IMPACTS
    ]
    assert not blocking, f"accessibility violations on {name}:\n" + "\n".join(blocking)
    return by_impact


def _record(name: str, entry: dict) -> None:
    path = Path(settings.DATA_DIR) / AXE_REPORT
    report = json.loads(path.read_text()) if path.exists() else {}
    report[name] = entry
    path.write_text(json.dumps(report, indent=2, sort_keys=True))

"""Reports in the browser: the numbers of real uploads, charts with their tables, filters,
tabs, CSV downloads; and the same pages over a generated library, checked for accessibility."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from tests.e2e.flows import check_accessibility, register, upload
from tests.integration.analysis import library

TABS = ("Overview", "Per day", "Per person", "Processing latency", "Failures")


@pytest.mark.usefixtures("faces_dir")
def test_reports_count_real_uploads_and_download_as_csv(page, faces_dir):
    register(page, "reports@example.com")
    upload(page, faces_dir / "probes" / "obama1.jpg", faces_dir / "probes" / "two_people.jpg")

    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    totals = page.get_by_label("Totals")
    expect(totals).to_contain_text("2photos")
    expect(totals).to_contain_text("3faces")

    page.get_by_role("link", name="Per day").click()
    expect(page.get_by_role("img", name="Per day")).to_be_visible()
    rows = page.locator("table.report-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text("2")  # photos uploaded today

    page.get_by_role("link", name="Processing latency").click()
    stages = page.locator("table.report-table tbody th")
    expect(stages).to_have_text(["uploading", "queued", "detecting", "enhancing", "recognizing", "end_to_end"])

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    lines = list(csv.reader(io.StringIO(open(download.value.path()).read())))
    assert lines[0] == ["stage", "jobs", "p50_seconds", "p95_seconds", "max_seconds", "jobs_per_hour"]
    assert [line[0] for line in lines[1:]] == ["uploading", "queued", "detecting", "enhancing", "recognizing",
                                             "end_to_end"]
    assert all(line[1] == "2" for line in lines[1:])


def test_report_pages_over_a_generated_library_are_accessible(page):
    register(page, "library@example.com")
    owner = get_user_model().objects.get(email="library@example.com")
    library.generate(owner, seed=5, assets=60)

    page.goto("/reports/")
    for tab in TABS:
        page.get_by_role("navigation", name="Reports").get_by_role("link", name=tab).click()
        expect(page.get_by_role("link", name=tab)).to_have_attribute("aria-current", "page")
        expect(page.locator("svg.chart-svg")).to_have_count(1)
        expect(page.locator("table.report-table").first).to_be_visible()
        check_accessibility(page, f"reports: {tab.lower()}")

    # Filters stay with the tabs and the CSV link.
    page.get_by_role("link", name="Per day").click()
    page.get_by_label("From").fill("2026-03-04")
    page.get_by_label("To").fill("2026-03-06")
    page.get_by_label("Kind").select_option(label="Photos")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.report-table tbody tr")).to_have_count(3)
    expect(page.get_by_role("link", name="Download CSV")).to_have_attribute(
        "href", "/api/v1/reports/daily/?format=csv&since=2026-03-04&until=2026-03-06&kind=image")
    page.get_by_role("link", name="Per person").click()
    expect(page.get_by_label("From")).to_have_value("2026-03-04")
    check_accessibility(page, "reports: per person (filtered)")

    # On a phone the charts' words stay readable (squeezed, they were 6 px) and the page fits.
    # A table or chart wider than the phone scrolls on its own, says so with a shade at its
    # edge, and can be scrolled from the keyboard.
    page.set_viewport_size({"width": 390, "height": 844})
    wide_tables = {}
    for tab in TABS:
        page.get_by_role("navigation", name="Reports").get_by_role("link", name=tab).click()
        words = page.locator("svg.chart-svg text")
        heights = [words.nth(i).bounding_box()["height"] for i in range(min(words.count(), 5))]
        assert heights and min(heights) >= 11, f"{tab}: chart text {heights} px high"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{tab} is wider than the phone"
        wide_tables[tab] = page.locator(".table-scroll, .chart").evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => "
            "({focusable: e.tabIndex === 0, shaded: getComputedStyle(e).backgroundImage.includes('radial-gradient')}))")
    assert any(wide_tables.values()), "nothing is wider than a phone: the check below checks nothing"
    assert all(t["focusable"] and t["shaded"] for tables in wide_tables.values() for t in tables), wide_tables
    check_accessibility(page, "reports (phone)")


def test_a_refused_filter_is_explained(page, allow_failed_responses):
    allow_failed_responses(r"^/reports/\?owner=")
    register(page, "curious@example.com")
    response = page.goto("/reports/?owner=1")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_have_text("Only staff can see another user's reports; leave out owner "
                                                   "to see yours.")
    check_accessibility(page, "reports: refused")

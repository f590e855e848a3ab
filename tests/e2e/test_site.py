"""The site without any media: signing up and in, the error pages, keyboard use, accessibility."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD
from tests.e2e.flows import check_accessibility, forget_the_session, log_in, register


def test_sign_up_log_out_and_log_in_again(page):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    check_accessibility(page, "login")
    page.get_by_role("link", name="Sign up").first.click()
    check_accessibility(page, "register")

    register(page, "new@example.com", name="Nina")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Nina")
    expect(page.get_by_text("Nothing uploaded yet")).to_be_visible()
    check_accessibility(page, "dashboard (empty)")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url("/login/")
    log_in(page, "new@example.com")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Nina")


def test_a_wrong_password_is_refused_in_words(page):
    register(page, "careful@example.com")
    forget_the_session(page)
    page.goto("/login/")
    page.get_by_label("Email").fill("careful@example.com")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct email and password.")
    check_accessibility(page, "login (error)")


def test_forms_work_from_the_keyboard_alone(page):
    register(page, "keys@example.com")
    forget_the_session(page)
    page.goto("/login/")
    # The email field has focus on arrival; Tab moves on, Enter submits. (The browser applies
    # autofocus at its next frame, not at "load": typing at once lost the first key on a busy
    # machine.)
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type("keys@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url("/")


def test_a_missing_page_is_styled_and_reveals_nothing(page, allow_failed_responses):
    allow_failed_responses(r"^/no-such-page/", r"^/assets/999999/")
    register(page, "lost@example.com")
    for path in ("/no-such-page/", "/assets/999999/"):
        response = page.goto(path)
        assert response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
        body = page.content()
        # Django's debug page lists the URL patterns; ours names none of them.
        for leak in ("URLconf", "urlpatterns", "api/v1", "Traceback", "DEBUG"):
            assert leak not in body, f"the 404 page shows {leak!r}"
    check_accessibility(page, "404")
    page.get_by_role("link", name="Go to the dashboard").click()
    expect(page).to_have_url("/")


def test_the_favicon_is_served(page):
    page.goto("/login/")
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert page.request.get(icon).ok
    assert page.request.get("/favicon.ico").ok  # redirected to the same icon


def test_a_long_hostile_file_name_wraps_instead_of_widening_the_pages(new_page, faces_dir):
    """A 200-character name without a space (HTML in it, shown as text) on a phone: the
    dashboard and the photo's page stay as wide as the screen."""
    from tests.e2e.conftest import JOB_TIMEOUT_MS

    page = new_page(viewport={"width": 390, "height": 844})
    register(page, "long-name@example.com")
    name = "<img src=x onerror=alert(1)>" + "A" * 200 + ".jpg"
    photo = (faces_dir / "probes" / "obama1.jpg").read_bytes()
    page.get_by_label("Photos and videos").set_input_files(
        [{"name": name, "mimeType": "application/octet-stream", "buffer": photo}])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator('tr.asset-row [data-role="stage"]')).to_have_text("completed", timeout=JOB_TIMEOUT_MS)

    def page_width():
        return page.evaluate("document.documentElement.scrollWidth")

    assert page_width() <= 390, "the dashboard is wider than the phone"
    # Each upload's progress is in view, not in a column scrolled off to the right.
    stage = page.locator('tr.asset-row [data-role="stage"]').bounding_box()
    assert stage["x"] + stage["width"] <= 390, stage
    check_accessibility(page, "dashboard (phone)")
    page.locator("tr.asset-row .name-cell a").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^<img src=x onerror=alert\(1\)>A+\.jpg$"))  # as text, shortened
    expect(heading.locator("img")).to_have_count(0)
    assert page_width() <= 390, "the photo's page is wider than the phone"
    check_accessibility(page, "photo with a long name (phone)")


def test_the_first_tab_offers_to_skip_to_the_content(page):
    register(page, "skip@example.com")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

"""Searching the library in the browser, on real uploads: filters, similar photos and
near-duplicates from the image embeddings, and one face found across the photos."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import check_accessibility, register, upload

pytestmark = pytest.mark.usefixtures("faces_dir")

PHOTOS = ("obama-720p.jpg", "obama-1080p.jpg", "obama1.jpg", "two_people.jpg")


def test_library_similar_photos_duplicates_and_a_face_everywhere(page, faces_dir):
    register(page, "searcher@example.com")
    upload(page, *(faces_dir / "probes" / name for name in PHOTOS))

    page.get_by_role("link", name="Library").click()
    names = page.locator(".library-name")
    expect(names).to_have_count(4)
    # Every one has a face: each square thumbnail is cropped around it, not around the middle.
    expect(page.locator("img.library-thumb[style*='object-position']")).to_have_count(4)
    check_accessibility(page, "library")
    # On a phone the thumbnails go two or more to a row (one per row made a 5,000 px page).
    page.set_viewport_size({"width": 390, "height": 844})
    tops = [round(box["y"]) for box in (page.locator(".library-item").nth(i).bounding_box() for i in range(4))]
    assert tops[0] == tops[1], f"one thumbnail per row at 390 px: tops {tops}"
    check_accessibility(page, "library (phone)")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_label("Has unknown faces").check()
    page.get_by_label("Kind").select_option(label="Photos")
    page.get_by_role("button", name="Search").click()
    expect(names).to_have_count(4)  # nobody is named yet: every face is unknown
    expect(page.get_by_role("heading", name="4 found")).to_be_visible()
    page.get_by_label("File name").fill("1080P")
    page.get_by_label("File name").press("Enter")
    expect(names).to_have_text(["obama-1080p.jpg"])
    expect(page.get_by_label("File name")).to_have_value("1080P")  # the filters stay as given
    page.get_by_role("link", name="Clear").click()
    expect(names).to_have_count(4)

    # The same shot at two resolutions: each is the other's nearest photo, and a near-duplicate.
    page.get_by_role("link", name="obama-720p.jpg").click()
    similar = page.locator(".similar-card .library-item")
    expect(similar.first).to_contain_text("obama-1080p.jpg")
    expect(similar.first).to_contain_text("near-duplicate")
    expect(similar).to_have_count(3)
    check_accessibility(page, "photo (similar photos)")

    page.get_by_role("link", name="Face 1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This face everywhere")
    same = page.locator("section", has=page.get_by_role("heading", name=re.compile("Probably the same person")))
    # Obama is in every other photo: his face in each is nearer than the match threshold.
    for name in ("obama-1080p.jpg", "obama1.jpg", "two_people.jpg"):
        expect(same.get_by_text(name)).to_be_visible()
    check_accessibility(page, "face everywhere")
    same.get_by_role("link").filter(has_text="obama1.jpg").click()
    expect(page).to_have_url(re.compile(r"/assets/\d+/#face-\d+$"))

    page.goto("/library/duplicates/")
    expect(page.get_by_role("heading", name="1 group, 2 photos")).to_be_visible()
    expect(page.locator(".duplicate-group .library-name")).to_have_text(["obama-1080p.jpg", "obama-720p.jpg"])
    check_accessibility(page, "near-duplicates")


def test_another_user_finds_none_of_it(new_page, faces_dir, allow_failed_responses):
    allow_failed_responses(r"^/faces/\d+/everywhere/")
    owner, stranger = new_page(), new_page()
    register(owner, "keeper@example.com")
    upload(owner, faces_dir / "probes" / "obama1.jpg")
    owner.get_by_role("link", name="obama1.jpg").click()
    face_url = owner.get_by_role("link", name="Face 1").get_attribute("href")

    register(stranger, "stranger@example.com")
    stranger.goto("/library/")
    expect(stranger.get_by_text("Nothing uploaded yet")).to_be_visible()
    assert stranger.goto(face_url).status == 404
    stranger.goto("/library/duplicates/")
    expect(stranger.get_by_role("heading", name="No near-duplicates")).to_be_visible()

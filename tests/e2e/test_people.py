"""The people loop in the browser, as a new user: unknown faces appear as people to name,
naming teaches recognition, re-runs keep the names, and every correction works from the pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import JOB_TIMEOUT_MS
from tests.e2e.flows import check_accessibility, register, upload

pytestmark = pytest.mark.usefixtures("faces_dir")


def gallery_photos(faces_dir):
    return sorted(path for path in (faces_dir / "gallery").rglob("*") if path.suffix in {".jpg", ".jpeg", ".png"})


def tiles(page):
    return page.locator(".person-tile")


def face_of(page, name: str):
    """The face items whose person is ``name`` (not merely listing it among the choices)."""
    return page.locator(".face-item").filter(has=page.locator(".face-info > strong", has_text=name))


def name_the_unnamed(page, name_of_photo) -> list[str]:
    """Open every unnamed tile, look at one of its photos, and name the person after it."""
    named = []
    while True:
        page.goto("/people/")
        unnamed = tiles(page).filter(has_text="Unnamed person")
        if unnamed.count() == 0:
            return named
        unnamed.first.locator("a").click()
        photo_name = page.locator(".face-grid .face-tile").first.locator("span.small").first.inner_text()
        name = name_of_photo(photo_name)
        page.get_by_label("Name this person").fill(name)
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        named.append(name)


def test_unknown_faces_become_people_to_name_and_then_are_recognised(page, faces_dir):
    register(page, "people@example.com")
    photos = gallery_photos(faces_dir)
    # The gallery's file names repeat across folders (img1.jpg): upload them as <person>-<file>.
    upload(page, *photos, names=[f"{path.parent.name}-{path.name}" for path in photos])

    page.goto("/people/")
    expect(tiles(page).first).to_be_visible()
    check_accessibility(page, "people gallery (unnamed)")
    # Every person whose two gallery photos look alike (dlib distance under 0.5) became a person
    # without a name; alex_lacamoire's two (0.54 apart) and lin_manuel_miranda's one wait.
    assert tiles(page).filter(has_text="Unnamed person").count() == 4
    page.locator(".person-tile a").first.click()
    check_accessibility(page, "person (unnamed)")

    # Name each person after the folder of the photo their first face comes from.
    names = name_the_unnamed(page, lambda photo: photo.split("-")[0])
    assert sorted(names) == ["biden", "kit_harington", "obama", "rose_leslie"]

    upload(page, faces_dir / "probes" / "kit_with_rose.jpg", faces_dir / "probes" / "obama1.jpg")
    page.get_by_role("link", name="kit_with_rose.jpg").click()
    labels = page.locator(".face-box .face-name")
    expect(labels.filter(has_text="kit_harington")).to_have_count(1)
    expect(labels.filter(has_text="rose_leslie")).to_have_count(1)
    check_accessibility(page, "photo (recognised)")

    # Re-run: the names stay.
    page.get_by_role("button", name="Re-run").click()
    expect(page.locator('[data-role="stage"]')).to_have_text("completed", timeout=JOB_TIMEOUT_MS)
    page.reload()
    expect(labels.filter(has_text="kit_harington")).to_have_count(1)
    expect(labels.filter(has_text="rose_leslie")).to_have_count(1)


def test_corrections_from_the_pages(page, faces_dir):
    register(page, "fixer@example.com")
    upload(page, faces_dir / "gallery" / "obama" / "obama.jpg", faces_dir / "gallery" / "obama" / "obama2.jpg",
           faces_dir / "probes" / "two_people.jpg")

    # Name a face from a photo's page with "New person…".
    page.get_by_role("link", name="obama2.jpg").click()
    face = page.locator(".face-item").first
    face.get_by_label(re.compile("Who is face 1")).select_option("new")
    face.get_by_placeholder("New person's name").fill("Barack")
    face.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("obama2.jpg: this face is now Barack.")
    # The page is sent to that face, and the message that stays at the top does not cover it.
    message = page.locator(".flash").bounding_box()
    assert page.locator(".face-item:target").bounding_box()["y"] >= message["y"] + message["height"]
    expect(page.locator(".face-item:target")).to_be_focused()  # the keyboard carries on from there
    # The message stays until closed (it took 96 px of a phone's screen for good), and closing
    # it leaves the keyboard on the face.
    page.get_by_role("button", name="Close this message").click()
    expect(page.locator(".flash")).to_have_count(0)
    expect(page.locator(".face-item:target")).to_be_focused()

    # Not a face: the background false positive of obama.jpg, folded away among the unclear
    # detections (nobody has to look at them), one click to unfold.
    page.goto("/")
    page.get_by_role("link", name="obama.jpg", exact=True).click()
    unclear = page.locator(".unclear-faces")
    expect(unclear.locator(".face-item")).to_have_count(1)
    expect(unclear.get_by_role("button", name="Not a face")).to_be_hidden()
    unclear.locator("summary").click()
    unclear.locator(".face-item", has_text="quality 0.3").get_by_role("button", name="Not a face").click()
    expect(page.get_by_role("status")).to_contain_text("dismissed as not a face")
    expect(page.locator(".unclear-faces")).to_have_count(0)
    expect(page.get_by_text(re.compile(r"Dismissed as not a face \(1\)"))).to_be_visible()

    # Naming obama2's face taught recognition: obama.jpg's face is Barack now. Not this person:
    face_of(page, "Barack").get_by_role("button", name="Not Barack").click()
    expect(page.get_by_role("status")).to_contain_text("not Barack, noted")
    expect(face_of(page, "Barack")).to_have_count(0)

    # Merge: give Obama's face in two_people.jpg (Barack too, by now) another new name, then
    # say that person is the same as Barack.
    page.goto("/")
    page.get_by_role("link", name="two_people.jpg").click()
    obama = face_of(page, "Barack")
    obama.get_by_role("combobox").select_option("new")
    obama.get_by_placeholder("New person's name").fill("Obama")
    obama.get_by_role("button", name="Save").click()
    page.goto("/people/")
    page.get_by_role("link", name=re.compile("^Obama")).click()
    page.get_by_label("Same person as").select_option(label="Barack")
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Barack")
    expect(page.get_by_role("status")).to_contain_text("Merged Obama into Barack")
    check_accessibility(page, "person (named)")

    # A 200-character name without a space: the person's pages stay as wide as a phone.
    person_url = page.url
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_label("Rename").fill("Kit" + "X" * 197)
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("status")).to_contain_text("XXXX")
    for link in ("Delete…", "Erase…", None):
        if link:
            page.get_by_role("link", name=link).click()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{page.url} is wider than the phone"
        page.goto(person_url)
    page.get_by_label("Rename").fill("Barack")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Barack")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Erase, after a confirmation that says what goes.
    page.get_by_role("link", name="Erase…").click()
    expect(page.get_by_text(re.compile(r"2 faces \(with their embeddings\) in 2 photos"))).to_be_visible()
    check_accessibility(page, "erase confirmation")
    page.get_by_role("button", name="Erase Barack").click()
    expect(page.get_by_role("status")).to_contain_text("Barack erased: 2 faces")
    expect(page.locator(".person-tile", has_text="Barack")).to_have_count(0)

"""Photos and videos in the browser: live progress without reloads, face boxes and names,
naming a face, the people pages, a video's page, and a second user who sees none of it."""

from __future__ import annotations

import collections
import json
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import check_accessibility, register, upload

pytestmark = pytest.mark.usefixtures("faces_dir")


def boxes_overlap(a, b) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def labels_off_the_picture(labels, picture) -> list[int]:
    """The labels (a locator) that reach past the left or right edge of ``picture``'s box."""
    frame = picture.bounding_box()
    off = []
    for i in range(labels.count()):
        box = labels.nth(i).bounding_box()
        if box["x"] < frame["x"] - 3 or box["x"] + box["width"] > frame["x"] + frame["width"] + 3:
            off.append(i)
    return off


def test_uploads_reach_completed_live_and_the_totals_follow(page, faces_dir):
    register(page, "photos@example.com")
    photos = [faces_dir / "probes" / name for name in ("obama1.jpg", "two_people.jpg", "multiface.jpg")]
    stats = page.locator(".stats")
    expect(stats.locator('[data-count="photos"]')).to_have_text("0")

    upload(page, *photos)  # waits for "completed" in every row, with no reload (one worker batch)

    # Every column has a name for screen readers, the thumbnails' included.
    expect(page.get_by_role("columnheader", name="Thumbnail")).to_have_count(1)
    expect(stats.locator('[data-count="photos"]')).to_have_text("3")
    # 1 + 2 + 6 faces at least, counted live as the jobs finish.
    page.wait_for_function("() => Number(document.querySelector('[data-count=faces]').textContent) >= 9")
    for photo in photos:
        row = page.locator("tr.asset-row", has_text=photo.name)
        assert int(row.locator('[data-role="face-count"]').inner_text()) >= 1
    check_accessibility(page, "dashboard (uploads)")
    # The people tiles are links whose words say what they count, not a bare number.
    to_name = page.get_by_role("link", name=re.compile(r"^(1 person|\d+ people) to name$"))
    expect(to_name).to_have_attribute("href", "/people/")


def test_photo_page_boxes_names_and_naming_a_face(page, faces_dir):
    register(page, "namer@example.com")
    upload(page, faces_dir / "probes" / "two_people.jpg")
    page.goto("/people/")
    page.get_by_label("Name").fill("Barack Obama")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Barack Obama")

    page.goto("/")
    page.get_by_role("link", name="two_people.jpg").click()
    expect(page.locator(".face-box")).to_have_count(2)
    expect(page.locator(".face-box.unknown")).to_have_count(2)
    check_accessibility(page, "photo")

    page.get_by_label("Who is face 1?").select_option(label="Barack Obama")
    page.locator("#face-list, .face-list").get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("status")).to_contain_text("two_people.jpg: this face is now Barack Obama.")
    expect(page.locator(".face-box", has_text="Barack Obama")).to_have_count(1)

    page.get_by_role("link", name="People").click()
    check_accessibility(page, "people")
    page.get_by_role("link", name="Barack Obama").click()
    expect(page.locator(".face-grid img")).to_have_count(1)
    check_accessibility(page, "person")


def test_face_labels_never_overlap_at_phone_width(new_page, faces_dir):
    page = new_page(viewport={"width": 390, "height": 844})
    register(page, "phone@example.com")
    upload(page, faces_dir / "probes" / "multiface.jpg")
    page.get_by_role("link", name="multiface.jpg").click()
    labels = page.locator(".face-label")
    expect(labels).to_have_count(6)
    page.locator(".photo-frame img").evaluate("img => img.decode()")
    boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
    overlapping = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                   if boxes_overlap(boxes[i], boxes[j])]
    assert not overlapping, f"labels overlap at 390 px: {overlapping}"
    assert not labels_off_the_picture(labels, page.locator(".photo-frame"))
    # The "who is this?" menu and its Save are big enough for a finger (they were 25 px high).
    for control in (page.locator(".assign-form select").first, page.locator(".assign-form .button").first):
        assert control.bounding_box()["height"] >= 36, control
    check_accessibility(page, "photo (phone)")


def test_video_page_timeline_seeks_and_boxes_follow_the_video(page, faces_dir):
    register(page, "video@example.com")
    upload(page, faces_dir / "videos" / "short_hamilton_clip.mp4")
    page.get_by_role("link", name="short_hamilton_clip.mp4").click()
    video = page.locator("video")
    expect(video).to_be_visible()
    assert video.evaluate("v => new Promise(r => v.readyState >= 1 ? r(v.duration) : "
                          "v.addEventListener('loadedmetadata', () => r(v.duration)))") > 5
    # The server answers byte ranges, so the browser can seek anywhere (it could not before).
    assert video.evaluate("v => v.seekable.length ? v.seekable.end(0) : 0") > 5
    # The boxes are drawn in percent of a layer exactly over the picture.
    layer, shown = page.locator(".video-boxes").bounding_box(), video.bounding_box()
    assert abs(layer["width"] - shown["width"]) < 2 and abs(layer["height"] - shown["height"]) < 2, (layer, shown)

    # A few tracks, not a row of crops per frame; every bar plays the video from its start.
    bars = page.locator(".timeline-bar")
    expect(bars.first).to_be_visible()
    rects = [bars.nth(i).bounding_box() for i in range(bars.count())]
    stacked = [(i, j) for i in range(len(rects)) for j in range(i + 1, len(rects)) if boxes_overlap(rects[i], rects[j])]
    assert not stacked, f"timeline bars drawn over each other: {stacked}"  # each one can be seen and clicked
    items = page.locator(".faces-card > .face-list > .face-item")
    faces = int(page.locator(".page-header").inner_text().split("(")[1].split(" face")[0])
    assert 1 <= items.count() <= faces / 2
    last = bars.nth(bars.count() - 1)
    target = float(last.get_attribute("data-seek"))
    video.evaluate("v => { v.muted = true; }")
    last.click()
    page.wait_for_function(f"() => Math.abs(document.getElementById('asset-video').currentTime - {target}) < 1.5")
    video.evaluate("v => v.pause()")
    # The boxes of the faces of that moment are drawn over the video, one sampled frame's at a
    # time: just before each next sample, the boxes are still the previous sample's alone.
    expect(page.locator(".video-boxes .video-box").first).to_be_attached()
    samples = json.loads(page.locator("#video-faces").text_content())
    per_time = collections.Counter(face["t"] for face in samples)
    times = sorted(per_time)
    for before, after in list(zip(times, times[1:]))[:12]:
        moment = after - 0.04  # inside the old overlap of two samples' windows
        video.evaluate(f"v => new Promise(r => {{ v.addEventListener('seeked', () => r(), {{once: true}}); "
                       f"v.currentTime = {moment}; }})")
        page.wait_for_timeout(50)
        drawn = page.locator(".video-boxes .video-box").count()
        assert drawn in (per_time[before], per_time[after]), (moment, drawn, per_time[before], per_time[after])
    check_accessibility(page, "video")
    # On a phone the names over the video stay on it (a label used to run off its right edge).
    page.set_viewport_size({"width": 390, "height": 844})
    labels = page.locator(".video-box span")
    expect(labels.first).to_be_visible()
    assert not labels_off_the_picture(labels, page.locator(".video-frame"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the video's page is wider than the phone"
    # The timeline's bars get the phone's width, not what a name column beside them leaves.
    assert page.locator(".timeline-track").first.bounding_box()["width"] >= 250
    check_accessibility(page, "video (phone)")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Play from here: a link to the page that starts there.
    page.goto(page.url.split("?")[0] + f"?t={target}")
    page.wait_for_function(f"() => Math.abs(document.getElementById('asset-video').currentTime - {target}) < 1.5")


def test_a_second_user_sees_none_of_it(new_page, faces_dir, allow_failed_responses):
    owner = new_page()
    register(owner, "owner@example.com")
    upload(owner, faces_dir / "probes" / "obama1.jpg")
    owner.get_by_role("link", name="obama1.jpg").click()
    photo_path = re.sub(r"^https?://[^/]+", "", owner.url)
    face_crop = owner.locator(".face-crop").first.get_attribute("src")
    allow_failed_responses(re.escape(photo_path), re.escape(face_crop), r"^/api/v1/assets/\d+/")

    stranger = new_page()
    register(stranger, "stranger@example.com")
    expect(stranger.get_by_text("Nothing uploaded yet")).to_be_visible()
    expect(stranger.locator('[data-count="photos"]')).to_have_text("0")
    assert stranger.goto(photo_path).status == 404
    assert stranger.request.get(face_crop).status == 404
    asset_id = photo_path.strip("/").split("/")[-1]
    assert stranger.request.get(f"/api/v1/assets/{asset_id}/").status == 404
    stranger.goto("/people/")
    expect(stranger.get_by_text("No people yet")).to_be_visible()

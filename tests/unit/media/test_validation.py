"""Content validation: every accepted format decodes to upright 8-bit RGB; hostile input gets
the exact refusal (code and HTTP status)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from media.validation import ProbedMedia, RejectedUpload, probe_file, sanitize_filename
from tests.unit.media import samples


def probe(data: bytes) -> ProbedMedia:
    return probe_file(io.BytesIO(data), len(data))


def rejection(data: bytes) -> tuple[str, int]:
    with pytest.raises(RejectedUpload) as caught:
        probe(data)
    assert caught.value.message
    return caught.value.code, caught.value.status


def pixels(probed: ProbedMedia) -> np.ndarray:
    array = np.asarray(probed.preview)
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    return array


def assert_color(pixel, expected, tolerance=12):
    assert np.abs(np.asarray(pixel, dtype=int) - np.asarray(expected)).max() <= tolerance, (pixel, expected)


@pytest.mark.parametrize(
    ("fmt", "ext", "content_type"),
    [
        ("JPEG", "jpg", "image/jpeg"),
        ("PNG", "png", "image/png"),
        ("WEBP", "webp", "image/webp"),
        ("GIF", "gif", "image/gif"),
        ("BMP", "bmp", "image/bmp"),
        ("TIFF", "tiff", "image/tiff"),
    ],
)
def test_each_image_format_is_detected_by_content_and_decoded(fmt, ext, content_type):
    probed = probe(samples.image_bytes(samples.solid(samples.RED), fmt))
    assert (probed.kind, probed.ext, probed.content_type) == ("image", ext, content_type)
    assert (probed.width, probed.height) == (64, 48)
    assert pixels(probed).shape == (48, 64, 3)
    assert_color(pixels(probed)[24, 32], samples.RED)


def test_exif_orientation_swaps_dimensions_and_rotates_pixels():
    probed = probe(samples.exif_rotated_jpeg())
    assert (probed.width, probed.height) == (40, 60)
    array = pixels(probed)
    assert_color(array[5, 20], samples.RED, tolerance=40)
    assert_color(array[55, 20], samples.BLUE, tolerance=40)


def big_photo(width: int, height: int, orientation: int | None = None) -> bytes:
    """Red left half, blue right half, as stored; noise so it is not one flat block."""
    rng = np.random.default_rng(0)
    array = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    array[:, : width // 2, 0] += 200
    array[:, width // 2 :, 2] += 200
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    return samples.image_bytes(Image.fromarray(array), "JPEG", exif=exif, quality=90)


@pytest.mark.parametrize("stored, orientation, shown", [
    ((2000, 1500), None, (2000, 1500)),
    ((2000, 1500), 6, (1500, 2000)),
    ((1600, 1599), 6, (1599, 1600)),  # decoded at 1/4 it is 400×400: the tag tells the turn
    ((1600, 1599), None, (1600, 1599)),
])
def test_a_preview_for_a_thumbnail_is_decoded_small_and_the_dimensions_stay_the_files(stored, orientation, shown):
    data = big_photo(*stored, orientation)
    probed = probe_file(io.BytesIO(data), len(data), preview_side=320)
    assert (probed.width, probed.height) == shown
    preview = pixels(probed)
    assert 320 <= min(preview.shape[:2]) and max(preview.shape[:2]) <= max(shown) // 2
    if preview.shape[0] != preview.shape[1]:
        assert (preview.shape[1] > preview.shape[0]) == (shown[0] > shown[1])  # upright, as shown
    # The stored left half (red) is shown on the left, or on top once turned (orientation 6).
    left_or_top = preview[preview.shape[0] // 2, 4] if orientation is None else preview[4, preview.shape[1] // 2]
    assert_color(left_or_top, samples.RED, tolerance=60)
    full = probe(data)  # without a preview size: every pixel, the same answer
    assert (full.width, full.height) == shown and pixels(full).shape[:2] == shown[::-1]


def test_a_photo_cut_short_is_refused_also_when_decoded_small():
    data = big_photo(2000, 1500)
    cut = data[: len(data) * 2 // 3]
    with pytest.raises(RejectedUpload) as caught:
        probe_file(io.BytesIO(cut), len(cut), preview_side=320)
    assert (caught.value.code, caught.value.status) == ("corrupt", 400)


def test_camera_multi_picture_jpeg_is_a_jpeg():
    data = samples.image_bytes(samples.solid(), "MPO", save_all=True, append_images=[samples.solid(samples.BLUE)])
    probed = probe(data)
    assert (probed.ext, probed.content_type) == ("jpg", "image/jpeg")
    assert_color(pixels(probed)[10, 10], samples.RED)


def test_animated_gif_gives_its_first_frame():
    probed = probe(samples.animated_gif())
    assert probed.ext == "gif"
    assert_color(pixels(probed)[10, 10], samples.RED)


def test_transparency_is_composited_on_white():
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    array = pixels(probe(samples.image_bytes(image, "PNG")))
    assert_color(array[0, 0], samples.RED, 0)
    assert_color(array[4, 4], (255, 255, 255), 0)


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 1)
    array = pixels(probe(samples.image_bytes(image, "PNG", transparency=0)))
    assert_color(array[0, 0], samples.BLUE, 0)
    assert_color(array[4, 4], (255, 255, 255), 0)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    assert_color(pixels(probe(samples.image_bytes(cmyk, "JPEG", quality=95)))[8, 8], samples.RED, 16)


def test_16_bit_png_is_scaled_to_8_bits():
    image = Image.new("I;16", (8, 8), 32896)  # 128 * 257
    array = pixels(probe(samples.image_bytes(image, "PNG")))
    assert_color(array[4, 4], (128, 128, 128), 0)


@pytest.mark.parametrize(("mode", "value", "expected"), [("L", 200, 200), ("1", 1, 255), ("LA", (90, 255), 90)])
def test_grayscale_becomes_rgb(mode, value, expected):
    array = pixels(probe(samples.image_bytes(Image.new(mode, (8, 8), value), "PNG")))
    assert_color(array[4, 4], (expected,) * 3, 0)


def test_real_rgba_photo(faces_dir):
    data = (faces_dir / "probes" / "32bit.png").read_bytes()
    with Image.open(io.BytesIO(data)) as original:
        assert original.mode == "RGBA"
        size = original.size
    probed = probe(data)
    assert (probed.ext, (probed.width, probed.height)) == ("png", size)
    assert pixels(probed).shape == (size[1], size[0], 3)


def test_real_jpeg_photo(faces_dir):
    probed = probe((faces_dir / "probes" / "obama1.jpg").read_bytes())
    assert probed.kind == "image" and probed.content_type == "image/jpeg"
    assert pixels(probed).std() > 10  # a photo, not a blank


def test_synthetic_video_is_measured():
    probed = probe(samples.synthetic_video(frames=10, fps=5))
    assert (probed.kind, probed.ext, probed.content_type) == ("video", "mp4", "video/mp4")
    assert (probed.width, probed.height) == (64, 48)
    assert probed.fps == pytest.approx(5)
    assert probed.duration == pytest.approx(2.0, abs=0.25)
    assert probed.frame_count == 10
    assert pixels(probed).shape == (48, 64, 3)


def test_sideways_phone_video_is_turned_upright():
    probed = probe(samples.sideways_phone_video())
    assert (probed.width, probed.height) == (48, 64)
    assert_color(pixels(probed)[5, 24], samples.RED, 16)
    assert_color(pixels(probed)[58, 24], samples.BLUE, 16)


def test_webm_and_mkv_are_told_apart():
    assert probe(samples.synthetic_video(codec="libvpx", fmt="webm")).ext == "webm"
    assert probe(samples.synthetic_video(fmt="matroska")).ext == "mkv"


def test_real_videos(faces_dir):
    probed = probe((faces_dir / "videos" / "short_hamilton_clip.mp4").read_bytes())
    assert (probed.width, probed.height) == (640, 360)
    assert probed.fps == pytest.approx(29.97)
    assert probed.duration == pytest.approx(9.18, abs=0.05)
    assert probed.frame_count == 275


HOSTILE = {
    "zero bytes": (b"", ("empty", 400)),
    "text named .jpg": (b"just some words, not a picture\n" * 20, ("unsupported_type", 415)),
    "HTML": (b"<!doctype html><html><body><script>alert(1)</script></body></html>", ("unsupported_type", 415)),
    "SVG": (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b'<rect width="10" height="10"/></svg>',
        ("unsupported_type", 415),
    ),
    "JPEG magic then garbage": (b"\xff\xd8\xff" + b"\x00" * 100, ("corrupt", 400)),
    "30000x30000 PNG bomb": (samples.png_claiming(30000, 30000), ("too_many_pixels", 400)),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_is_refused_with_the_right_code(name):
    data, expected = HOSTILE[name]
    assert rejection(data) == expected


def test_truncated_jpeg_is_corrupt():
    data = samples.noisy_jpeg()
    assert rejection(data[: len(data) // 2]) == ("corrupt", 400)


@pytest.mark.parametrize("kept", [6000, 0.5, 0.9])
def test_a_cut_short_image_is_explained_in_plain_words(kept):
    data = samples.noisy_jpeg()
    with pytest.raises(RejectedUpload) as caught:
        probe(data[: kept if isinstance(kept, int) else int(len(data) * kept)])
    assert caught.value.message == "The image is damaged or cut short: it could not be read to the end."


@pytest.mark.parametrize("side", [40, 64])  # 1600 px: Pillow's warning; 3072 px: Pillow's error
def test_pixel_limit_comes_from_settings(settings, monkeypatch, side):
    # Validation sets Pillow's process-wide limit from the setting: put it back for later tests.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    settings.SIGHTLINE_MAX_IMAGE_PIXELS = 1000
    assert rejection(samples.image_bytes(samples.solid(size=(side, side)), "PNG")) == ("too_many_pixels", 400)


def test_refusals_for_size_say_the_files_size_and_the_limit_in_plain_units(settings, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    settings.SIGHTLINE_MAX_IMAGE_PIXELS = 1_000_000
    with pytest.raises(RejectedUpload) as over:  # over the limit, under Pillow's warning at twice it
        probe(samples.image_bytes(samples.solid(size=(1200, 1000)), "PNG"))
    with pytest.raises(RejectedUpload) as bomb:  # Pillow's own refusal, before any pixel is read
        probe(samples.png_claiming(30000, 30000))
    image = samples.image_bytes(samples.solid(), "PNG")
    settings.SIGHTLINE_MAX_UPLOAD_BYTES = 1024
    with pytest.raises(RejectedUpload) as heavy:
        probe(image + b"\0" * 2048)

    assert over.value.message == "The image is 1.2 megapixels (1200×1000); the largest accepted is 1.0 megapixels."
    assert bomb.value.message == "The image is 900.0 megapixels; the largest accepted is 1.0 megapixels."
    assert heavy.value.message.startswith("The image is ") and heavy.value.message.endswith(
        " KB; the largest accepted is 1.0 KB.")


def test_audio_only_container_has_no_frames():
    assert rejection(samples.audio_only_mp4()) == ("no_frames", 400)


def test_video_without_a_decoder_has_no_frames():
    """A damaged sample description leaves the stream without a codec: PyAV would crash decoding it."""
    data = samples.synthetic_video().replace(b"stsd", b"sts\xe0", 1)
    assert rejection(data) == ("no_frames", 400)


def test_damaged_video_container_is_corrupt_not_unsupported():
    assert rejection(b"\x00\x00\x00\x18ftypisom" + b"\xff" * 200) == ("corrupt", 400)


def test_video_over_the_duration_limit_is_too_long(settings):
    settings.SIGHTLINE_MAX_VIDEO_SECONDS = 1
    assert rejection(samples.synthetic_video(frames=10, fps=5)) == ("too_long", 400)


def test_size_limits_differ_for_images_and_videos(settings):
    image = samples.image_bytes(samples.solid(), "PNG")
    video = samples.synthetic_video()
    settings.SIGHTLINE_MAX_UPLOAD_BYTES = len(image) - 1
    settings.SIGHTLINE_MAX_VIDEO_BYTES = len(video) + 1
    assert rejection(image) == ("too_large", 413)
    assert probe(video).kind == "video"
    settings.SIGHTLINE_MAX_VIDEO_BYTES = len(video) - 1
    assert rejection(video) == ("too_large", 413)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("C:\\Users\\me\\photo.png", "photo.png"),
        ("a\x00b\x1f\u202ec.jpg", "abc.jpg"),
        ("..", "upload"),
        ("", "upload"),
        (None, "upload"),
        ("  holiday.jpg  ", "holiday.jpg"),
        ("naïve %22quoted%22.jpg", 'naïve "quoted".jpg'),  # how a browser's form sends the quotes
        ("x" * 300 + ".jpeg", "x" * 195 + ".jpeg"),
    ],
)
def test_sanitize_filename(name, expected):
    assert sanitize_filename(name) == expected

"""MTCNN detection on real photos and on the inputs that break naive detectors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from recognition.engine.detector import DetectorConfig, MTCNNDetector, minimum_detectable_face

# facenet-pytorch's MTCNN with default settings finds exactly these on the shared photos.
REFERENCE_COUNTS = {"probes/multiface.jpg": 6, "probes/obama_and_biden.jpg": 4,
                    "probes/obama-240p.jpg": 1}


@pytest.fixture(scope="module")
def detector(engine) -> MTCNNDetector:
    return engine.detector


def test_counts_match_facenet_pytorch_reference(analyzed):
    counts = {name: len(analyzed[name]) for name in REFERENCE_COUNTS}
    assert counts == REFERENCE_COUNTS


def test_every_probe_has_at_least_its_manifest_faces(analyzed, probes):
    short = {p.name: len(analyzed[p.name]) for p in probes if len(analyzed[p.name]) < p.min_faces}
    assert not short, f"fewer faces than MANIFEST.csv expects: {short}"


def test_every_gallery_photo_has_a_confident_face(analyzed, gallery_photos):
    for photo in gallery_photos:
        faces = analyzed[photo.name]
        assert faces and faces[0].score > 0.95, photo.name


def test_partially_covered_faces_are_found(analyzed):
    for name in ("probes/obama_partial_face.jpg", "probes/obama_partial_face2.jpg"):
        assert analyzed[name] and analyzed[name][0].score > 0.9, name


def test_rgba_png_is_detected_after_pillow_conversion(faces_root, detector):
    with Image.open(faces_root / "probes/32bit.png") as image:
        assert image.mode == "RGBA"
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    assert len(detector.detect([rgb])[0]) >= 1


def test_outputs_are_pixel_coordinates_inside_the_face(analyzed, images):
    face = analyzed["probes/obama-480p.jpg"][0]
    x1, y1, x2, y2 = face.box
    height, width = images["probes/obama-480p.jpg"].shape[:2]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    inside = ((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2)
              & (face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2))
    assert inside.all()
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_images_without_faces_give_empty_results(detector):
    rng = np.random.default_rng(0)
    gradient = np.repeat(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], 480, 0)
    gradient = np.repeat(gradient, 3, axis=2)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    flat = np.full((300, 300, 3), 128, np.uint8)
    assert [len(d) for d in detector.detect([gradient, noise, flat])] == [0, 0, 0]


def test_tiny_and_degenerate_images_give_empty_results(detector):
    shapes = [(1, 1, 3), (5, 5, 3), (1, 1000, 3), (11, 400, 3)]
    images = [np.full(shape, 200, np.uint8) for shape in shapes]
    results = detector.detect(images)
    assert [len(d) for d in results] == [0, 0, 0, 0]
    assert results[0].boxes.shape == (0, 4) and results[0].landmarks.shape == (0, 5, 2)


def test_empty_list(detector):
    assert detector.detect([]) == []


def test_huge_synthetic_image_is_detected_on_a_capped_copy(detector):
    huge = np.random.default_rng(1).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)
    assert len(detector.detect([huge])[0]) == 0
    assert minimum_detectable_face(4000, 6000, detector.config) == pytest.approx(20 * 6000 / 2048)


def test_upscaled_real_photo_maps_boxes_back_to_input_pixels(detector, images):
    photo = images["probes/obama-480p.jpg"]  # 853×480
    factor = 7  # → 5971×3360, over the 2048 px detection cap
    huge = np.asarray(Image.fromarray(photo).resize((photo.shape[1] * factor,
                                                     photo.shape[0] * factor), Image.BILINEAR))
    small, large = detector.detect([photo, huge])
    assert len(large) >= 1
    expected = (small.boxes[0] + 0.5) * factor - 0.5
    face_height = small.boxes[0, 3] - small.boxes[0, 1]
    assert np.abs(large.boxes[0] - expected).max() < 0.1 * face_height * factor


def test_mixed_sizes_in_one_call_match_one_at_a_time(detector, images):
    names = ["probes/obama-240p.jpg", "probes/kit_with_rose.jpg", "probes/obama_small.jpg"]
    together = detector.detect([images[n] for n in names])
    for name, batched in zip(names, together):
        alone = detector.detect([images[name]])[0]
        assert len(alone) == len(batched)
        np.testing.assert_allclose(alone.boxes, batched.boxes, atol=1e-3)


def test_padded_batching_finds_the_same_faces(detector, images):
    names = ["probes/obama-240p.jpg", "probes/kit_with_rose.jpg"]
    padded = MTCNNDetector(detector.device, DetectorConfig(batching="pad"))
    grouped = detector.detect([images[n] for n in names])
    for a, b in zip(grouped, padded.detect([images[n] for n in names])):
        assert len(a) == len(b)
        assert np.abs(a.boxes - b.boxes).max() < 0.15 * (a.boxes[:, 3] - a.boxes[:, 1]).min()


def test_minimum_face_size_is_configurable(detector, images):
    # multiface.jpg's six faces are about 100-125 px tall; the pyramid starts at faces
    # of min_face_size and P-Net tolerates faces somewhat smaller than its window.
    counts = [len(MTCNNDetector(detector.device, DetectorConfig(min_face_size=size))
                  .detect([images["probes/multiface.jpg"]])[0]) for size in (200, 400)]
    assert counts[0] < 6 and counts[1] == 0


def test_thresholds_are_configurable(detector, images):
    picky = MTCNNDetector(detector.device, DetectorConfig(thresholds=(0.6, 0.7, 0.99)))
    found = picky.detect([images["probes/obama_and_biden.jpg"]])[0]
    assert len(found) == 3 and (found.scores > 0.99).all()  # the 0.84 face is dropped


@pytest.mark.parametrize("bad", [
    dict(min_face_size=5), dict(scale_factor=1.2), dict(thresholds=(0.6, 0.7)),
    dict(thresholds=(0.6, 0.7, 1.5)), dict(batching="sideways"), dict(max_side=4),
])
def test_invalid_config_is_rejected(bad):
    with pytest.raises(ValueError):
        DetectorConfig(**bad)


@pytest.mark.parametrize("bad", [
    np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
    np.zeros((10, 10, 3), np.float32), "not an image",
])
def test_non_rgb_uint8_input_is_rejected(detector, bad):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        detector.detect([bad])


def test_many_same_size_frames_are_split_into_bounded_batches(detector, monkeypatch, images):
    """Video frames share a size; P-Net must not take them all in one call."""
    from recognition.engine import detector as detector_module

    frame = images["probes/obama-240p.jpg"]
    monkeypatch.setattr(detector_module, "PNET_BATCH_PIXELS", frame.shape[0] * frame.shape[1] * 2)
    calls = []
    original = detector._propose_batch
    monkeypatch.setattr(detector, "_propose_batch",
                        lambda batch, *a: calls.append(len(batch)) or original(batch, *a))
    results = detector.detect([frame] * 5)
    assert calls == [2, 2, 1]
    assert [len(r) for r in results] == [1] * 5


def test_crops_of_small_boxes_sample_every_pixel_and_large_ones_a_few(detector, images):
    """R-Net/O-Net crops: a box up to CROP_SAMPLES × the crop's size is read as adaptive
    sampling reads it (every pixel counts); a larger one at CROP_SAMPLES² points per cell,
    which stays close to the full average on a real photo."""
    import torch
    from torchvision.ops import roi_align

    from recognition.engine.detector import CROP_SAMPLES, NORMALISE_MEAN, NORMALISE_SCALE, _Candidates

    photo = torch.as_tensor(images["probes/obama-1080p.jpg"].copy()).permute(2, 0, 1).unsqueeze(0)
    # The region read is one pixel wider than the box (MATLAB-style indices).
    small_side, large_side = 24 * CROP_SAMPLES - 1, 24 * CROP_SAMPLES * 8
    boxes = torch.tensor([[800.0, 200.0, 800 + small_side, 200 + small_side],
                          [700.0, 100.0, 700 + large_side, 100 + large_side]])
    candidates = _Candidates(boxes, torch.ones(2), torch.zeros(2, dtype=torch.long))
    crops = detector._crops([photo], candidates, 24) / NORMALISE_SCALE + NORMALISE_MEAN
    regions = torch.cat([torch.zeros(2, 1), boxes[:, 0:2] - 1, boxes[:, 2:4]], dim=1)
    every_pixel = roi_align(photo.float(), regions, (24, 24), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    torch.testing.assert_close(crops[0], every_pixel[0], atol=1e-3, rtol=0)
    difference = (crops[1] - every_pixel[1]).abs()
    assert 0 < difference.mean() < 2.0  # grey levels of 255

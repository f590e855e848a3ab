"""Quality scores and corrections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recognition.engine import align, enhance


def chips_of(engine, image, faces) -> torch.Tensor:
    return torch.stack([torch.from_numpy(engine.align(image, f.landmarks)).permute(2, 0, 1).float()
                        for f in faces])


def template_landmarks(count: int = 1) -> torch.Tensor:
    return torch.tensor(align.MTCNN_TEMPLATE)[None].repeat(count, 1, 1)


def test_quality_is_in_unit_range_and_high_for_good_gallery_faces(analyzed, gallery_photos):
    qualities = [analyzed[p.name][0].quality for p in gallery_photos]
    assert all(0.0 <= q <= 1.0 for q in qualities)
    assert np.median(qualities) > 0.7


def test_spurious_background_detections_score_low(analyzed):
    """The blurry 61 px background 'face' MTCNN finds in obama-1080p.jpg."""
    real, spurious = analyzed["probes/obama-1080p.jpg"][:2]
    assert real.quality > 0.8 and spurious.quality < 0.5


def test_blur_lowers_sharpness(engine, images, analyzed):
    name = "probes/obama-480p.jpg"
    chips = chips_of(engine, images[name], analyzed[name][:1])
    blurred = F.avg_pool2d(chips, 5, stride=1, padding=2, count_include_pad=False)
    sharp, soft = enhance.sharpness_score(enhance.grey(torch.cat([chips, blurred])))
    assert soft < sharp - 0.3


def test_smaller_faces_score_lower_on_size():
    boxes = torch.tensor([[0, 0, 15, 15], [0, 0, 40, 40], [0, 0, 80, 80], [0, 0, 300, 300]],
                         dtype=torch.float32)
    scores = enhance.size_score(boxes).tolist()
    assert scores[0] == 0.0 and scores[-1] == 1.0 and scores == sorted(scores)


def test_dark_and_flat_chips_score_lower_on_exposure():
    rng = np.random.default_rng(0)
    normal = torch.from_numpy(rng.uniform(40, 220, (1, 3, 150, 150)).astype(np.float32))
    scores = enhance.exposure_score(enhance.grey(torch.cat([normal, normal * 0.15,
                                                            torch.full_like(normal, 128)])))
    assert scores[0] > 0.8 and scores[1] < 0.3 and scores[2] < 0.05


def test_turned_face_scores_lower_on_frontalness():
    landmarks = template_landmarks(2)
    landmarks[1, 2, 0] += 22.0  # nose tip well off the eye midline: head turned
    frontal, turned = enhance.frontalness_score(landmarks).tolist()
    assert frontal > 0.9 and turned < 0.6


def test_low_light_correction_lifts_only_dark_chips():
    rng = np.random.default_rng(1)
    normal = torch.from_numpy(rng.uniform(60, 200, (1, 3, 150, 150)).astype(np.float32))
    dark = normal * 0.25
    corrected = enhance.normalise_low_light(torch.cat([normal, dark]))
    assert torch.equal(corrected[0], normal[0])
    mean_after = enhance.face_region(enhance.grey(corrected[1:])).mean().item()
    assert mean_after == pytest.approx(enhance.LOW_LIGHT_TARGET, abs=15)
    assert corrected.min() >= 0 and corrected.max() <= 255


def test_quality_of_an_empty_batch():
    empty = torch.zeros((0, 3, 150, 150))
    assert enhance.quality_scores(empty, torch.zeros((0, 4)), torch.zeros((0, 5, 2))).shape == (0,)

"""Similarity alignment to dlib-framed 150×150 chips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recognition.engine import align


def known_similarity(scale: float, angle: float, shift: tuple[float, float]) -> torch.Tensor:
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    return torch.tensor([[cos, -sin, shift[0]], [sin, cos, shift[1]]], dtype=torch.float64)


def apply(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    return points @ transform[:, :2].T + transform[:, 2]


def test_similarity_fit_recovers_known_transforms_in_a_batch():
    template = torch.tensor(align.MTCNN_TEMPLATE, dtype=torch.float64)
    truths = torch.stack([known_similarity(2.5, 0.3, (40.0, -12.0)),
                          known_similarity(0.4, -1.2, (3.0, 7.5))])
    source = torch.stack([apply(t, template) for t in truths])
    fitted = align.similarity_transforms(template.expand(2, 5, 2), source)
    torch.testing.assert_close(fitted, truths)


def test_inverse_composes_to_identity():
    transform = known_similarity(3.0, 0.7, (100.0, 50.0))[None]
    inverse = align.invert_similarities(transform)
    points = torch.rand(10, 2, dtype=torch.float64) * 100
    torch.testing.assert_close(apply(inverse[0], apply(transform[0], points)), points)


def test_landmarks_land_on_the_template_in_the_chip():
    template = torch.tensor(align.MTCNN_TEMPLATE, dtype=torch.float64)
    image_points = apply(known_similarity(1.7, 0.2, (30.0, 20.0)), template)[None]
    transforms = align.chip_to_image(image_points)
    torch.testing.assert_close(align.landmarks_in_chip(image_points, transforms), template[None])


def test_template_is_a_plausible_face_inside_the_chip():
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = align.MTCNN_TEMPLATE
    assert 0 < lx < nx < rx < align.CHIP_SIZE and 0 < mlx < nx < mrx
    assert max(ly, ry) < ny < min(mly, mry) < align.CHIP_SIZE


def test_chip_samples_the_right_pixels():
    """A checkerboard scaled ×2 and shifted comes back as the original checkerboard."""
    cells = ((np.indices((150, 150)) // 10).sum(axis=0) % 2 * 255).astype(np.float32)
    big = np.kron(cells, np.ones((2, 2), np.float32))  # 300×300, chip pixel (u, v) → (2u+0.5, 2v+0.5)
    image = torch.from_numpy(np.pad(big, ((7, 0), (5, 0))))[None].repeat(3, 1, 1)
    transform = torch.tensor([[[2.0, 0.0, 5.5], [0.0, 2.0, 7.5]]])
    chip = align.align_faces(image, None, transforms=transform)[0, 0].numpy()
    # One pyramid halving blurs cell edges; the cell interiors must match exactly enough.
    interior = (np.indices((150, 150)) % 10 >= 2) & (np.indices((150, 150)) % 10 <= 7)
    mask = interior[0] & interior[1]
    assert np.abs(chip[mask] - cells[mask]).max() < 2.0


def test_pyramid_levels_follow_dlibs_one_to_two_times_rule():
    scales = torch.tensor([0.5, 1.0, 1.9, 2.0, 4.5, 9.0])
    transforms = torch.zeros(len(scales), 2, 3)
    transforms[:, 0, 0] = scales
    transforms[:, 1, 1] = scales
    assert align.pyramid_levels(transforms, (4000, 4000)).tolist() == [0, 0, 0, 1, 2, 3]
    assert align.pyramid_levels(transforms, (20, 20)).max() <= 2  # never below 4 px


def test_outside_the_image_is_black():
    image = torch.full((3, 100, 100), 200.0)
    # Chip centred on the image's top-left corner: its upper-left quarter lies outside.
    transform = torch.tensor([[[0.5, 0.0, -37.5], [0.0, 0.5, -37.5]]])
    chip = align.align_faces(image, None, transforms=transform)[0]
    assert chip[:, :70, :70].max() == 0
    assert chip[:, 80:, 80:].min() == pytest.approx(200.0)


def test_bicubic_small_faces_stay_in_range():
    image = torch.from_numpy(np.random.default_rng(0).uniform(0, 255, (3, 60, 60)).astype(np.float32))
    transform = torch.tensor([[[0.3, 0.0, 5.0], [0.0, 0.3, 5.0]]])
    chip = align.align_faces(image, None, transforms=transform, small_face_mode="bicubic")
    assert chip.min() >= 0 and chip.max() <= 255


def test_engine_align_returns_a_uint8_chip_matching_analyze(engine, images, analyzed):
    name = "probes/obama-480p.jpg"
    face = analyzed[name][0]
    chip = engine.align(images[name], face.landmarks)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    # Rounding the chip to bytes moves the descriptor by far less than the 0.6 threshold.
    assert np.linalg.norm(engine.embed_chips(chip[None])[0] - face.embedding) < 0.02


def test_chips_frame_faces_like_dlib(engine, images, analyzed):
    """dlib's own descriptor on our chip and on dlib's chip of the same face agree closely."""
    dlib = pytest.importorskip("dlib", reason="dlib-bin not installed (requirements-dev.txt)")
    from recognition.engine.weights import weight_path

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(weight_path("dlib_shape_predictor_5")))
    encoder = dlib.face_recognition_model_v1(str(weight_path("dlib_resnet")))
    distances = []
    for name in ("gallery/obama/obama.jpg", "gallery/biden/biden2.jpg", "probes/obama-480p.jpg"):
        image = images[name]
        shape = predictor(image, detector(image, 0)[0])
        theirs = np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25))
        ours = engine.align(image, analyzed[name][0].landmarks)
        distances.append(np.linalg.norm(np.array(encoder.compute_face_descriptor(ours))
                                        - np.array(encoder.compute_face_descriptor(theirs))))
    # Same face, different landmark detectors: bench/fit_alignment_template.py measured a
    # mean of about 0.13 over 36 faces; different people are above 0.6.
    assert max(distances) < 0.3, distances

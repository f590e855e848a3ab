"""The public FaceEngine API, and recognition by nearest neighbour over the shared gallery."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from recognition.engine import DetectedFace, enhance
from recognition.engine.face_engine import (FP16_TOLERANCE, fp16_matches_fp32,
                                            fp16_parity_check, synthetic_parity_chips)

THRESHOLD = 0.6


def nearest(enrolled, embedding) -> tuple[str, float]:
    people, matrix = enrolled
    distances = np.linalg.norm(matrix - embedding, axis=1)
    best = int(distances.argmin())
    return people[best], float(distances[best])


def test_detected_faces_have_the_documented_shapes(analyzed):
    faces = analyzed["probes/obama_and_biden.jpg"]
    for face in faces:
        assert isinstance(face, DetectedFace)
        assert len(face.box) == 4 and all(isinstance(v, float) for v in face.box)
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        assert isinstance(face.score, float) and 0 < face.score <= 1
        assert isinstance(face.quality, float) and 0 <= face.quality <= 1
        assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas == sorted(areas, reverse=True), "biggest face first"
    with pytest.raises(dataclasses.FrozenInstanceError):
        faces[0].score = 0.0


def test_each_gallery_photo_yields_its_persons_face(analyzed, gallery_photos, enrolled):
    people, matrix = enrolled
    for photo in gallery_photos:
        others = [i for i, p in enumerate(people) if p != photo.subjects[0]]
        own = [i for i, p in enumerate(people) if p == photo.subjects[0]]
        face = analyzed[photo.name][0]
        own_distance = np.linalg.norm(matrix[own] - face.embedding, axis=1).min()
        other_distance = np.linalg.norm(matrix[others] - face.embedding, axis=1).min()
        assert own_distance < 1e-5 and other_distance > THRESHOLD, photo.name


def test_every_expected_person_is_recognised_in_its_probe(analyzed, probes, enrolled):
    missing = {}
    for probe in probes:
        recognised = {name for name, d in (nearest(enrolled, f.embedding)
                                           for f in analyzed[probe.name]) if d <= THRESHOLD}
        if set(probe.subjects) - recognised:
            missing[probe.name] = sorted(set(probe.subjects) - recognised)
    assert not missing, f"expected people not recognised: {missing}"


def test_no_face_is_given_a_wrong_identity(analyzed, probes, enrolled):
    """obama_and_biden.jpg has a third, unenrolled person; multiface.jpg has nobody enrolled."""
    wrong = []
    for probe in probes:
        for face in analyzed[probe.name]:
            name, distance = nearest(enrolled, face.embedding)
            if distance <= THRESHOLD and name not in probe.subjects:
                wrong.append((probe.name, name, round(distance, 3)))
    assert not wrong


def test_resolution_ladder_matches_enrolled_obama(analyzed, enrolled):
    for name in ("probes/obama-240p.jpg", "probes/obama-480p.jpg", "probes/obama-720p.jpg",
                 "probes/obama-1080p.jpg", "probes/obama_small.jpg"):
        assert nearest(enrolled, analyzed[name][0].embedding) [0] == "obama", name


def test_images_without_faces_and_empty_batches(engine):
    assert engine.analyze([]) == []
    noise = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert engine.analyze([noise, np.zeros((1, 1, 3), np.uint8)]) == [[], []]


def test_embed_chips_matches_analyze(engine, images, analyzed):
    name = "probes/kit_with_rose.jpg"
    chips = np.stack([engine.align(images[name], f.landmarks) for f in analyzed[name]])
    embeddings = engine.embed_chips(chips)
    assert embeddings.shape == (len(chips), 128) and embeddings.dtype == np.float32
    expected = np.stack([f.embedding for f in analyzed[name]])
    assert np.linalg.norm(embeddings - expected, axis=1).max() < 0.02


def test_non_rgb_input_is_rejected_before_any_work(engine):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        engine.analyze([np.zeros((10, 10), np.uint8)])


def test_model_version_names_every_ingredient(engine):
    version = engine.model_version
    for part in ("mtcnn-", engine.detector.weights_id, "dlib_resnet_v1-", "align-", "enh-"):
        assert part in version


def test_model_version_changes_with_preprocessing(engine):
    from recognition.engine import FaceEngine

    other = FaceEngine(device="cpu", enhancement=enhance.EnhanceConfig(upscale_below=480))
    assert other.model_version != engine.model_version


def test_no_fp16_on_cpu(engine):
    assert engine.device.type == "cpu" and engine.fp16 is False


def test_parity_batch_is_fixed():
    first, second = synthetic_parity_chips(), synthetic_parity_chips()
    assert first.shape == (8, 3, 150, 150) and torch.equal(first, second)
    assert 0 <= first.min() and first.max() <= 255 and first.std() > 20


def test_parity_comparison_accepts_identical_descriptors(engine):
    """The comparison the fp16 decision rests on, exercised on CPU with fp32 on both sides."""
    assert fp16_matches_fp32(engine.embedder, engine.embedder) is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_parity_check_on_cuda():
    assert isinstance(fp16_parity_check(torch.device("cuda")), bool)
    assert FP16_TOLERANCE < THRESHOLD / 100


def test_importing_the_package_loads_no_models():
    code = ("import sys, recognition.engine as e; "
            "assert 'recognition.engine.face_engine' not in sys.modules; "
            "assert 'torchvision' not in sys.modules; "
            "assert e.FaceEngine.__name__ == 'FaceEngine'")
    subprocess.run([sys.executable, "-c", code], check=True)

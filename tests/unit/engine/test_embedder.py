"""The PyTorch port of dlib's face descriptor network gives dlib's descriptors.

Two references: descriptors dlib computed on synthetic chips (tests/data/dlib_reference.npz,
made by bench/make_dlib_reference.py, no dlib needed here), and, where dlib and the shared
photos are present, dlib run live on every face of the gallery and probe photos.
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from recognition.engine import weights
from recognition.engine.embedder import (
    CHIP_SIZE,
    DISTANCE_THRESHOLD,
    MODEL_ID,
    FaceEmbedder,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE = REPO_ROOT / "tests" / "data" / "dlib_reference.npz"
FACES_DIR = Path(
    os.environ.get("SIGHTLINE_FACES_DIR", REPO_ROOT / ".." / "shared" / "data" / "faces")
).resolve()
MIN_COSINE = 0.9999
MAX_ABS_DIFF = 1e-4


def _load_recipe():
    spec = importlib.util.spec_from_file_location(
        "make_dlib_reference", REPO_ROOT / "bench" / "make_dlib_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_parity(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    cosine = (ours * theirs).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    max_diff = np.abs(ours - theirs).max(axis=1)
    report = f"{what}: min cosine {cosine.min():.8f}, max |diff| {max_diff.max():.2e} over {len(ours)}"
    print(report)
    assert cosine.min() >= MIN_COSINE, report
    assert max_diff.max() <= MAX_ABS_DIFF, report


@pytest.fixture(scope="module")
def embedder():
    return FaceEmbedder(torch.device("cpu"))


@pytest.fixture(scope="module")
def synthetic():
    recipe = _load_recipe()
    reference = np.load(REFERENCE)
    chips = recipe.synthetic_chips()
    assert int(reference["recipe_version"]) == recipe.RECIPE_VERSION
    assert str(reference["chips_sha256"]) == recipe.chips_digest(chips), (
        "the synthetic chip recipe no longer rebuilds the chips the reference was made from; "
        "rerun bench/make_dlib_reference.py"
    )
    assert str(reference["model_sha256"]) == weights.WEIGHTS["dlib_resnet"].sha256
    return chips, reference["descriptors"]


def test_matches_dlib_on_synthetic_chips(embedder, synthetic):
    chips, expected = synthetic
    assert len(chips) >= 20
    _assert_parity(embedder.embed(chips), expected, "synthetic chips vs stored dlib descriptors")


def test_descriptor_shape_dtype_and_scale(embedder, synthetic):
    chips, _ = synthetic
    out = embedder.embed(chips[:3])
    assert out.shape == (3, 128) and out.dtype == np.float32
    # dlib descriptors are not unit vectors; callers must not assume they are.
    assert not np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=0.05)


def test_batching_does_not_change_results(embedder, synthetic):
    chips, _ = synthetic
    together = embedder.embed(chips)
    one_by_one = np.concatenate([embedder.embed(chips[i : i + 1]) for i in range(8)])
    np.testing.assert_allclose(together[:8], one_by_one, atol=2e-6)


def test_embed_tensor_matches_embed(embedder, synthetic):
    chips, _ = synthetic
    tensor = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    out = embedder.embed_tensor(tensor)
    assert out.dtype == torch.float32 and out.shape == (len(chips), 128)
    np.testing.assert_allclose(out.numpy(), embedder.embed(chips), atol=2e-6)


def test_empty_batches(embedder):
    assert embedder.embed(np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)).shape == (0, 128)
    assert embedder.embed_tensor(torch.zeros(0, 3, CHIP_SIZE, CHIP_SIZE)).shape == (0, 128)


def test_rejects_wrong_input(embedder):
    with pytest.raises(ValueError, match="uint8 RGB"):
        embedder.embed(np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        embedder.embed(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 3, 150, 150\)"):
        embedder.embed_tensor(torch.zeros(1, 150, 150, 3))
    with pytest.raises(ValueError, match="only supported on CUDA"):
        FaceEmbedder(torch.device("cpu"), fp16=True)


def test_model_id_names_the_weights():
    assert weights.WEIGHTS["dlib_resnet"].sha256[:8] in MODEL_ID


@pytest.fixture(scope="module")
def dlib_live():
    dlib = pytest.importorskip(
        "dlib", reason="dlib is not installed (pip install -r requirements-dev.txt); live parity skipped"
    )
    if not (FACES_DIR / "MANIFEST.csv").is_file():
        pytest.skip(f"shared face photos not found at {FACES_DIR} (set SIGHTLINE_FACES_DIR)")
    return dlib


@pytest.fixture(scope="module")
def real_faces(dlib_live):
    """Every face dlib finds in the gallery and probe photos: (labels, dlib chips, dlib descriptors)."""
    from PIL import Image, ImageOps

    dlib = dlib_live
    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(weights.weight_path("dlib_shape_predictor_5")))
    face_model = dlib.face_recognition_model_v1(str(weights.weight_path("dlib_resnet")))
    paths = sorted(FACES_DIR.glob("gallery/*/*")) + sorted(FACES_DIR.glob("probes/*"))
    labels, chips, descriptors = [], [], []
    for path in paths:
        with Image.open(path) as image:
            pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        # Upsampling small photos once lets HOG find their faces; large ones have enough pixels.
        for index, box in enumerate(detector(pixels, 1 if max(pixels.shape) <= 700 else 0)):
            chip = np.asarray(dlib.get_face_chip(pixels, landmarks(pixels, box), size=150, padding=0.25))
            labels.append(f"{path.relative_to(FACES_DIR)}#{index}")
            chips.append(chip)
            descriptors.append(np.asarray(face_model.compute_face_descriptor(chip), np.float32))
    return labels, np.stack(chips), np.stack(descriptors)


def test_matches_dlib_live_on_real_faces(embedder, real_faces):
    labels, chips, expected = real_faces
    assert len(labels) >= 20, f"dlib found only {len(labels)} faces: {labels}"
    _assert_parity(embedder.embed(chips), expected, "real faces vs dlib live")


def test_same_person_is_within_threshold(embedder, real_faces):
    labels, chips, _ = real_faces
    descriptors = embedder.embed(chips)
    obama = [i for i, label in enumerate(labels) if label.startswith("gallery/obama/")]
    biden = [i for i, label in enumerate(labels) if label.startswith("gallery/biden/")]
    assert len(obama) == 2 and len(biden) == 2, labels
    same = np.linalg.norm(descriptors[obama[0]] - descriptors[obama[1]])
    different = np.linalg.norm(descriptors[obama[0]] - descriptors[biden[0]])
    assert same < DISTANCE_THRESHOLD < different


FP16_MAX_ABS_DIFF = 2e-3  # per component; the match threshold is a distance of 0.6


def test_half_precision_network_stays_close_to_fp32(synthetic):
    """The fp16 path's numerics, checked on CPU: fp32 normalisation, half body."""
    from recognition.engine.embedder import DlibResNet, load_cpu_model

    chips, _ = synthetic
    full_model = load_cpu_model()
    half_model = DlibResNet().eval()
    half_model.load_state_dict(full_model.state_dict())
    half_model = half_model.half()
    half_model.means = half_model.means.float()
    x = torch.from_numpy(chips[:4]).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        full = full_model(x)
        half = half_model.body(half_model.normalize(x).half()).float()
    assert torch.isfinite(half).all()
    assert (full - half).abs().max().item() <= FP16_MAX_ABS_DIFF


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_dlib_reference(synthetic):
    chips, expected = synthetic
    cuda = torch.device("cuda")
    _assert_parity(FaceEmbedder(cuda).embed(chips), expected, "CUDA fp32 vs stored dlib descriptors")
    half = FaceEmbedder(cuda, fp16=True)
    assert half.model.means.dtype == torch.float32
    assert np.abs(half.embed(chips) - expected).max() <= FP16_MAX_ABS_DIFF
    on_device = torch.from_numpy(chips).permute(0, 3, 1, 2).float().to(cuda)
    assert half.embed_tensor(on_device).dtype == torch.float32

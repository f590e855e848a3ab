"""Generate tests/data/dlib_reference.npz: dlib's own descriptors for synthetic face chips.

The parity test rebuilds the same chips from the recipe below (``synthetic_chips``) and
compares our PyTorch port against these descriptors, so it needs neither dlib nor photos.
The file holds no image pixels at all (house rule: no copies of the shared photos), only
descriptors, the recipe version, a digest of the rebuilt chips and the model digest.

Run by hand after changing the recipe or the model (needs requirements-dev.txt):

    .venv/bin/python bench/make_dlib_reference.py
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT = REPO_ROOT / "tests" / "data" / "dlib_reference.npz"
RECIPE_VERSION = 1
SEED = 20250613
SIZE = 150


def _upsample_bilinear(coarse: np.ndarray, size: int = SIZE) -> np.ndarray:
    """(h, w, 3) float64 grid -> (size, size, 3), bilinear with aligned corners, in float64."""
    h, w = coarse.shape[:2]
    ys = np.linspace(0.0, h - 1.0, size)
    xs = np.linspace(0.0, w - 1.0, size)
    y0 = np.minimum(np.floor(ys).astype(int), h - 2)
    x0 = np.minimum(np.floor(xs).astype(int), w - 2)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _cartoon_face(skin, hair, background) -> np.ndarray:
    """A crude face where dlib's aligned chips put one: oval, hair, eyes, nose, mouth."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    image = np.empty((SIZE, SIZE, 3))
    image[:] = background
    head = ((xx - 75) / 52) ** 2 + ((yy - 80) / 68) ** 2 <= 1
    image[head] = skin
    image[head & (yy < 32)] = hair
    for eye_x in (50, 100):
        image[((xx - eye_x) / 9) ** 2 + ((yy - 62) / 5) ** 2 <= 1] = (40, 30, 30)
    image[(np.abs(xx - 75) < 5) & (yy > 70) & (yy < 95)] = np.asarray(skin) * 0.8
    image[((xx - 75) / 20) ** 2 + ((yy - 112) / 5) ** 2 <= 1] = (150, 60, 60)
    return image


def synthetic_chips() -> np.ndarray:
    """Deterministic (N, 150, 150, 3) uint8 RGB chips: smooth random fields and patterns."""
    rng = np.random.default_rng(SEED)
    chips = []
    for grid in (2, 3, 4, 6, 8, 12, 16, 24):  # smooth random colour fields, coarse to fine
        for _ in range(2):
            chips.append(_upsample_bilinear(rng.integers(0, 256, (grid, grid, 3)).astype(np.float64)))
    chips.append(rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.float64))  # white noise
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    ramp = xx / (SIZE - 1) * 255
    chips.append(np.stack([ramp, ramp[::-1], np.full_like(ramp, 128.0)], axis=-1))  # gradients
    checker = (((yy // 10) + (xx // 10)) % 2) * 255
    chips.append(np.stack([checker] * 3, axis=-1))
    rings = 127.5 + 127.5 * np.sin(np.hypot(yy - 75, xx - 75) / 4)
    chips.append(np.stack([rings, rings * 0.5, 255 - rings], axis=-1))
    for value in (0.0, 122.0, 255.0):  # flat: black, near the mean, white
        chips.append(np.full((SIZE, SIZE, 3), value))
    chips.append(_cartoon_face((224, 172, 140), (60, 40, 20), (200, 210, 230)))
    chips.append(_cartoon_face((141, 85, 36), (20, 20, 20), (90, 120, 90)))
    return np.stack([_to_uint8(chip) for chip in chips])


def chips_digest(chips: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(chips).tobytes()).hexdigest()


def main() -> int:
    sys.path.insert(0, str(REPO_ROOT))
    import dlib  # dev-only dependency (requirements-dev.txt)

    from recognition.engine import weights

    model_path = weights.weight_path("dlib_resnet")
    face_model = dlib.face_recognition_model_v1(str(model_path))
    chips = synthetic_chips()
    descriptors = np.stack(
        [np.asarray(face_model.compute_face_descriptor(chip), dtype=np.float32) for chip in chips]
    )
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUTPUT,
        descriptors=descriptors,
        recipe_version=np.int64(RECIPE_VERSION),
        chips_sha256=np.str_(chips_digest(chips)),
        model_sha256=np.str_(weights.WEIGHTS["dlib_resnet"].sha256),
        dlib_version=np.str_(dlib.__version__),
    )
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes): {len(chips)} descriptors, dlib {dlib.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

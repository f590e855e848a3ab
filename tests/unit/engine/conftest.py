"""Session fixtures for the face engine tests: one FaceEngine, the shared photos analysed once.

The photos live outside the repository (``<repo>/../shared/data/faces`` or
SIGHTLINE_FACES_DIR); tests that need them skip with the reason when they are absent.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[3]
FACES_DIR = Path(os.environ.get("SIGHTLINE_FACES_DIR", REPO_ROOT.parent / "shared" / "data" / "faces"))
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass(frozen=True)
class Photo:
    name: str  # path relative to the faces folder, as MANIFEST.csv writes it
    subjects: tuple[str, ...]
    min_faces: int


def load_rgb(path: Path) -> np.ndarray:
    """How callers hand images to the engine: any Pillow mode converted to 8-bit RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="session")
def faces_root() -> Path:
    if not (FACES_DIR / "MANIFEST.csv").is_file():
        pytest.skip(f"shared face photos not found at {FACES_DIR} (set SIGHTLINE_FACES_DIR)")
    return FACES_DIR


@pytest.fixture(scope="session")
def probes(faces_root) -> list[Photo]:
    with open(faces_root / "MANIFEST.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["path"].startswith("probes/")]
    return [Photo(r["path"], tuple(s for s in r["expected_subjects"].split(";") if s),
                  int(r["min_faces"])) for r in rows]


@pytest.fixture(scope="session")
def gallery_photos(faces_root) -> list[Photo]:
    return [Photo(f"gallery/{p.parent.name}/{p.name}", (p.parent.name,), 1)
            for p in sorted((faces_root / "gallery").glob("*/*"))
            if p.suffix.lower() in IMAGE_SUFFIXES]


@pytest.fixture(scope="session")
def engine():
    from recognition.engine import FaceEngine

    return FaceEngine(device="cpu")


@pytest.fixture(scope="session")
def images(faces_root, gallery_photos, probes) -> dict[str, np.ndarray]:
    return {p.name: load_rgb(faces_root / p.name) for p in gallery_photos + probes}


@pytest.fixture(scope="session")
def analyzed(engine, images) -> dict:
    """Every gallery and probe photo through one batched analyze call."""
    names = list(images)
    return dict(zip(names, engine.analyze([images[n] for n in names])))


@pytest.fixture(scope="session")
def enrolled(analyzed, gallery_photos) -> tuple[list[str], np.ndarray]:
    """(person per row, embeddings): the biggest face of each gallery photo."""
    people = [p.subjects[0] for p in gallery_photos]
    return people, np.stack([analyzed[p.name][0].embedding for p in gallery_photos])
